from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from lmr.config import config_option, env_name, load_config_file, option, redact
from lmr.errors import ConfigError


@click.command()
@config_option
@option("--batch-size", type=int, default=8)
@option("--name", default="x")
def cmd(config: str | None, batch_size: int, name: str) -> None:
    click.echo(f"{batch_size} {name}")


def test_env_name() -> None:
    assert env_name("--batch-size") == "LMR_BATCH_SIZE"


def test_precedence_flag_over_env_over_file(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("batch-size: 16\nname: from-file\n")
    r = CliRunner()
    assert r.invoke(cmd, ["--config", str(f)]).output.strip() == "16 from-file"
    assert r.invoke(cmd, ["--config", str(f)], env={"LMR_BATCH_SIZE": "32"}).output.strip() == "32 from-file"
    assert (
        r.invoke(cmd, ["--config", str(f), "--batch-size", "64"], env={"LMR_BATCH_SIZE": "32"}).output.strip()
        == "64 from-file"
    )
    t = tmp_path / "c.toml"
    t.write_text('batch_size = 4\nname = "toml"\n')
    assert r.invoke(cmd, ["--config", str(t)]).output.strip() == "4 toml"


def test_bad_config_files(tmp_path: Path) -> None:
    r = CliRunner()
    f = tmp_path / "c.yaml"
    f.write_text("batch-sise: 16\n")
    res = r.invoke(cmd, ["--config", str(f)])
    assert res.exit_code != 0 and "unknown keys batch_sise" in res.output
    bad = tmp_path / "b.toml"
    bad.write_text("batch_size = = 3")
    with pytest.raises(ConfigError, match="not valid"):
        load_config_file(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config_file(tmp_path / "missing.yaml")
    ini = tmp_path / "c.ini"
    ini.write_text("x=1")
    with pytest.raises(ConfigError, match="unknown extension"):
        load_config_file(ini)


def test_redact_hides_secrets_only() -> None:
    out = redact({"sasl_password": "hunter2", "wandb_api_key": "k", "ssl_key_file": "/k.pem", "batch_size": 8})
    assert out == {"sasl_password": "***", "wandb_api_key": "***", "ssl_key_file": "/k.pem", "batch_size": 8}


def test_presets_fill_only_what_the_user_did_not_set() -> None:
    from trainer.settings import TrainSettings

    s = TrainSettings.from_params({"train": ["x.jsonl"]}, set())
    assert s.preset == "seed" and s.learning_rate == 1e-6 and s.lr_scheduler == "constant" and s.epochs == 5
    f = TrainSettings.from_params({"train": ["x.jsonl"], "encoder": "/enc", "learning_rate": 3e-5}, {"learning_rate"})
    assert f.preset == "fresh" and f.learning_rate == 3e-5 and f.others_lr == 1e-4 and f.lr_scheduler == "linear"
    with pytest.raises(ConfigError, match="No training data"):
        TrainSettings.from_params({}, set())
    with pytest.raises(ConfigError, match="max-width"):
        TrainSettings.from_params({"train": ["x"], "max_width": "wide"}, set())


def test_trainer_config_file_keys_equal_flags(tmp_path: Path) -> None:
    from trainer.cli import main

    f = tmp_path / "train.yaml"
    f.write_text("train: [nowhere.jsonl]\nencoder: /no/such/encoder\nlr: 1\n")
    res = CliRunner().invoke(main, ["run", "--config", str(f)])
    assert res.exit_code != 0 and "unknown keys lr" in res.output
    f.write_text("train: [nowhere.jsonl]\nlearning-rate: 0.001\n")
    res = CliRunner().invoke(main, ["run", "--config", str(f)])
    assert res.exit_code != 0 and "No data file matches nowhere.jsonl" in res.output
