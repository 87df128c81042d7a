"""The HTTP edge: AdmissionReview in and out, the raw ASGI admission app, request handlers, slow-client guard."""
