"""The options' one declaration (webhook/options.py): the command line, the environment and the README agree."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest

from webhook import cli, options
from webhook.config import Settings
from webhook.validation.modules import Modules

ROOT = Path(__file__).resolve().parents[2]


def parse(argv: list[str], environ: dict[str, str] | None = None) -> Settings:
    parser = cli.build_parser(environ or {})
    args = parser.parse_args(["serve", *argv])
    cli._check_cert_arguments(parser, args)
    return cli.settings_from(args)


def test_the_readme_flags_table_is_the_declaration():
    readme = (ROOT / "README.md").read_text()
    expected = options.replace_table(readme)
    assert readme == expected, (
        "README.md's flags table differs from webhook/options.py; regenerate it with\n"
        "    python -m webhook.options --write README.md\n"
        "the table is:\n" + options.markdown_table()
    )


def test_the_table_lists_every_flag_env_and_default():
    table = options.markdown_table()
    for opt in options.OPTIONS:
        row = next(line for line in table.splitlines() if line.startswith(f"| `{opt.flag}`"))
        assert all(f"`{name}`" in row for name in opt.env_names)
        assert options.shown_default(opt) in row


def test_every_option_has_an_environment_variable_and_a_settings_field():
    settings_fields = set(Settings.__dataclass_fields__)
    flags = [f for opt in options.OPTIONS for f in opt.flags]
    envs = [e for opt in options.OPTIONS for e in opt.env_names]
    assert len(flags) == len(set(flags)) and len(envs) == len(set(envs))
    for opt in options.OPTIONS:
        assert opt.env_names, opt.flag
        assert opt.settings_field in settings_fields, opt.flag


@pytest.mark.parametrize(
    ("flag", "env"),
    [
        # the names the program read before every option had one, several of them upstream's
        ("--webhook-host", ("WEBHOOK_HOST",)),
        ("--webhook-port", ("WEBHOOK_PORT",)),
        ("--health-probe-bind-address", ("HEALTH_PROBE_BIND_ADDRESS",)),
        ("--metrics-bind-address", ("METRICS_BIND_ADDRESS",)),
        ("--relabel-namespaces", ("RELABEL_NAMESPACES",)),
        ("--namespace", ("POD_NAMESPACE",)),
        ("--state-file", ("STATE_FILE",)),
        ("--kubeconfig", ("KUBECONFIG",)),
        ("--dynakube-api-version", ("DYNAKUBE_API_VERSION",)),
        ("--certs-dir", ("CERTS_DIR",)),
        ("--cert-mode", ("CERT_MODE",)),
        ("--service-name", ("SERVICE_NAME",)),
        ("--cert-extra-san", ("CERT_EXTRA_SANS",)),
        ("--cert-secret-name", ("CERT_SECRET_NAME",)),
        ("--mutating-webhook-config", ("MUTATING_WEBHOOK_CONFIGS",)),
        ("--validating-webhook-config", ("VALIDATING_WEBHOOK_CONFIGS",)),
        ("--init-image", ("DT_OPERATOR_IMAGE", "INIT_IMAGE")),
        ("--csi-driver", ("CSI_DRIVER",)),
        ("--events", ("EVENTS",)),
        ("--init-secrets", ("INIT_SECRETS",)),
        ("--init-secret-timeout", ("INIT_SECRET_TIMEOUT",)),
        ("--modules", ("MODULES_JSON", "modules.json")),
        ("--reinject", ("REINJECT",)),
        ("--reinject-dry-run", ("REINJECT_DRY_RUN",)),
        ("--reinject-rate", ("REINJECT_RATE",)),
        ("--reinject-resync", ("REINJECT_RESYNC",)),
        ("--shutdown-delay", ("SHUTDOWN_DELAY",)),
        ("--log-level", ("LOG_LEVEL",)),
        ("--log-format", ("LOG_FORMAT",)),
        ("--debug-endpoints", ("DEBUG_ENDPOINTS",)),
    ],
)
def test_environment_variable_names_are_kept(flag, env):
    assert options.option(flag).env_names == env


def test_defaults_without_flags_or_environment_are_the_settings_defaults():
    assert parse([]) == Settings()
    assert Settings().webhook_port == 8443 and Settings().health_bind == ("0.0.0.0", 10080)
    assert Settings().cert_check_interval == 300.0 and Settings().cert_mode == "files"
    assert Settings().init_image == options.DEFAULT_INIT_IMAGE and Settings().modules == Modules()


@pytest.mark.parametrize(
    ("field", "flag", "env", "value", "flag_value", "expected"),
    [
        ("webhook_port", "--webhook-port", "WEBHOOK_PORT", "9443", "7443", (9443, 7443)),
        ("relabel_interval", "--relabel-interval", "RELABEL_INTERVAL", "60", "30", (60.0, 30.0)),
        ("cert_name", "--cert-name", "CERT_NAME", "a.crt", "b.crt", ("a.crt", "b.crt")),
        ("keep_alive", "--keep-alive", "KEEP_ALIVE", "5", "6", (5.0, 6.0)),
        ("limit_concurrency", "--limit-concurrency", "LIMIT_CONCURRENCY", "50", "60", (50, 60)),
        (
            "metrics_bind",
            "--metrics-bind-address",
            "METRICS_BIND_ADDRESS",
            "0",
            ":9",
            (("0.0.0.0", 0), ("0.0.0.0", 9)),
        ),
        (
            "ca_validity",
            "--ca-validity",
            "CA_VALIDITY",
            "90d",
            "80d",
            (dt.timedelta(days=90), dt.timedelta(days=80)),
        ),
        ("cert_check_interval", "--cert-check-interval", "CERT_CHECK_INTERVAL", "1m", "2m", (60.0, 120.0)),
        ("log_level", "--log-level", "LOG_LEVEL", "debug", "error", ("debug", "error")),
        ("state_file", "--state-file", "STATE_FILE", "a.yaml", "b.yaml", (Path("a.yaml"), Path("b.yaml"))),
    ],
)
def test_a_flag_wins_over_its_environment_variable_which_wins_over_the_default(
    field, flag, env, value, flag_value, expected
):
    assert getattr(parse([], {env: value}), field) == expected[0]
    assert getattr(parse([f"{flag}={flag_value}"], {env: value}), field) == expected[1]
    assert getattr(parse([], {env: ""}), field) == getattr(Settings(), field)  # empty: unset


@pytest.mark.parametrize(
    ("flag", "env"),
    [("--events", "EVENTS"), ("--init-secrets", "INIT_SECRETS"), ("--csi-driver", "CSI_DRIVER")],
)
def test_on_by_default_switches_read_their_variable_and_both_flags(flag, env):
    field = options.option(flag).settings_field
    assert getattr(parse([]), field) is True
    assert getattr(parse([], {env: "false"}), field) is False
    assert getattr(parse([flag], {env: "false"}), field) is True
    assert getattr(parse([f"--no-{flag[2:]}"], {env: "true"}), field) is False


@pytest.mark.parametrize("env", ["RELABEL_NAMESPACES", "REINJECT", "DEBUG_ENDPOINTS"])
def test_off_by_default_switches_read_their_variable(env):
    field = env.lower()
    assert getattr(parse([], {env: "yes"}), field) is True
    assert getattr(parse([], {env: "TRUE"}), field) is True
    assert getattr(parse([], {env: "0"}), field) is False
    assert getattr(parse([], {env: "maybe"}), field) is False


def test_a_set_variable_that_is_no_boolean_word_is_off_but_the_csi_driver_follows_the_modules():
    assert parse([], {"EVENTS": "maybe"}).events is False
    assert parse([], {"CSI_DRIVER": "maybe"}).csi_driver is True
    assert parse([], {"CSI_DRIVER": "maybe", "modules.json": '{"csiDriver": false}'}).csi_driver is False
    assert parse([], {"MODULES_JSON": '{"csiDriver": false}'}).csi_driver is False
    assert parse([], {"MODULES_JSON": '{"csiDriver": false}', "CSI_DRIVER": "true"}).csi_driver is True


def test_the_first_of_several_variables_wins():
    assert parse([], {"INIT_IMAGE": "b:1"}).init_image == "b:1"
    assert parse([], {"DT_OPERATOR_IMAGE": "a:1", "INIT_IMAGE": "b:1"}).init_image == "a:1"
    assert parse(["--init-image=c:1"], {"DT_OPERATOR_IMAGE": "a:1"}).init_image == "c:1"
    both = {"MODULES_JSON": '{"kspm": true}', "modules.json": '{"csiDriver": true}'}
    assert parse([], both).modules == Modules.parse('{"kspm": true}')


def test_repeatable_flags_replace_the_environment_list():
    env = {"CERT_EXTRA_SANS": "a.example.com, 10.0.0.1,", "MUTATING_WEBHOOK_CONFIGS": "m1,m2"}
    settings = parse([], env)
    assert settings.cert_extra_sans == ("a.example.com", "10.0.0.1")
    assert settings.mutating_webhook_configs == ("m1", "m2")
    settings = parse(["--cert-extra-san", "b", "--cert-extra-san", "c"], env)
    assert settings.cert_extra_sans == ("b", "c")
    assert parse(["--cert-extra-san", "b"]).cert_extra_sans == ("b",)
    # the default list is not changed by a parse
    assert parse([], env).cert_extra_sans == ("a.example.com", "10.0.0.1")


def test_values_depending_on_another_option():
    assert parse(["--state-file", "s.yaml"]).cert_mode == "dev"
    assert parse(["--state-file", "s.yaml", "--cert-mode", "files"]).cert_mode == "files"
    assert parse([], {"CERT_MODE": "self-managed"}).cert_mode == "self-managed"
    dry = parse(["--reinject-dry-run"])
    assert dry.reinject is True and dry.reinject_dry_run is True


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"WEBHOOK_PORT": "https"}, "argument --webhook-port: invalid int value: 'https'"),
        ({"REINJECT_RATE": "0"}, "argument --reinject-rate: '0' must be greater than 0"),
        ({"CERT_VALIDITY": "soon"}, "argument --cert-validity: duration 'soon' is not understood"),
    ],
)
def test_an_invalid_variable_is_refused_naming_its_flag(environ, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse([], environ)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_explain_reads_the_options_it_shares_with_serve():
    parser = cli.build_parser({"POD_NAMESPACE": "ops", "CSI_DRIVER": "false", "INIT_IMAGE": "i:2"})
    args = parser.parse_args(["explain", "pod.yaml"])
    assert (args.namespace, args.csi_driver, args.init_image, args.state_file) == ("ops", False, "i:2", None)
    assert parser.parse_args(["explain", "pod.yaml", "--csi-driver"]).csi_driver is True


def test_help_names_every_flag_its_variables_and_default(capsys):
    with pytest.raises(SystemExit):
        cli.main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for opt in options.OPTIONS:
        assert opt.flag in text
        assert f"(env {', '.join(opt.env_names)}; default " in text
    assert "%(" not in text and "`" not in text
    assert text.count("(default:") == 0  # BooleanOptionalAction's own suffix is not added


def test_no_function_in_the_command_line_module_is_longer_than_80_lines():
    tree = ast.parse((ROOT / "webhook" / "cli.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.end_lineno - node.lineno + 1 <= 80, node.name
