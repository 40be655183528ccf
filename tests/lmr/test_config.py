from pathlib import Path
from typing import Any

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


def test_training_arguments_come_from_the_settings() -> None:
    from lmr.model.runtimes.cpu import cpu_has_native_bf16
    from trainer.settings import TrainSettings

    s = TrainSettings.from_params(
        {"train": ["x.jsonl"], "encoder": "/enc", "eval_steps": 500, "batch_size": 4, "grad_accum": 2},
        {"batch_size", "grad_accum"},
    )
    a = s.training_arguments("runs/r-1", n_train=80, has_eval=True, device="cpu", report_to=[])
    assert (a.learning_rate, a.per_device_train_batch_size, a.gradient_accumulation_steps) == (5e-5, 4, 2)
    assert a.eval_steps == a.save_steps == 10 and a.load_best_model_at_end and a.metric_for_best_model == "f1"
    assert a.run_name == "r-1" and a.bf16 == cpu_has_native_bf16() and a.use_cpu
    assert s.evaluation_interval(80, world_size=2) == 5, "two processes take twice the posts per step"
    b = s.training_arguments("runs/r-2", n_train=80, has_eval=False, device="cpu", report_to=[])
    assert b.eval_strategy == "no" and not b.load_best_model_at_end
    with pytest.raises(ConfigError, match="needs a CUDA GPU"):
        TrainSettings.from_params({"train": ["x"], "precision": "fp16"}, set()).precision_flags("cpu")


@pytest.mark.parametrize("native", [True, False])
def test_bf16_on_a_cpu_only_where_it_is_native(native: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--precision bf16`` on a CPU: autocast where the CPU has AVX512-BF16/AMX, a clear refusal elsewhere;
    ``auto`` picks bf16 on such a CPU and float32 on any other."""
    from lmr.model.runtimes import cpu as runtimes
    from trainer.settings import TrainSettings

    monkeypatch.setattr(runtimes, "cpu_has_native_bf16", lambda: native)
    s = TrainSettings.from_params({"train": ["x"], "precision": "bf16"}, set())
    if native:
        assert s.precision_flags("cpu") == {"bf16": True, "fp16": False}
    else:
        with pytest.raises(ConfigError, match="native bfloat16") as e:
            s.precision_flags("cpu")
        assert "--precision fp32" in str(e.value)
    auto = TrainSettings.from_params({"train": ["x"]}, set())
    assert auto.precision_flags("cpu") == {"bf16": native, "fp16": False}, "auto is bf16 exactly where it is native"


def run_param(main: Any, name: str) -> Any:
    return next(p for p in main.commands["run"].params if p.name == name)


def test_trainer_cli_defaults_are_the_settings_defaults() -> None:
    from dataclasses import MISSING, fields

    from trainer.cli import main
    from trainer.settings import PRESETS, TrainSettings

    defaults = {f.name: f.default for f in fields(TrainSettings) if f.default is not MISSING}
    for k in PRESETS["seed"]:  # filled by the chosen preset, so the flag itself has no default
        assert run_param(main, k).default is None, k
        defaults.pop(k)
    checked = 0
    for p in main.commands["run"].params:
        name = "eval" if p.name == "eval_" else p.name
        if name in defaults and defaults[name] is not None:
            assert p.default == defaults[name], name
            checked += 1
    assert checked >= 20


def test_trainer_config_file_keys_equal_flags(tmp_path: Path) -> None:
    from trainer.cli import main

    f = tmp_path / "train.yaml"
    f.write_text("train: [nowhere.jsonl]\nencoder: /no/such/encoder\nlr: 1\n")
    res = CliRunner().invoke(main, ["run", "--config", str(f)])
    assert res.exit_code != 0 and "unknown keys lr" in res.output
    f.write_text("train: [nowhere.jsonl]\nlearning-rate: 0.001\n")
    res = CliRunner().invoke(main, ["run", "--config", str(f)])
    assert res.exit_code != 0 and "No data file matches nowhere.jsonl" in res.output


def test_resume_last_finds_the_newest_checkpoint_of_earlier_runs(tmp_path: Path) -> None:
    from trainer.settings import TrainSettings
    from trainer.train import resume_point

    s = TrainSettings.from_params({"train": ["x"], "resume": "last", "output_dir": str(tmp_path), "name": "m"}, set())
    with pytest.raises(ConfigError, match="found no checkpoint of 'm'"):
        resume_point(s)
    runs = {"m-20261127-100000": (50, 400), "m-20261127-110000": (100, 200)}
    runs |= {"other-20261127-120000": (900,), "m-fold1-20261127-120000": (800,)}  # other models' runs
    for run, steps in runs.items():
        for n in steps:
            (tmp_path / run / f"checkpoint-{n}").mkdir(parents=True)
    assert resume_point(s) == str(tmp_path / "m-20261127-110000" / "checkpoint-200")
    named = TrainSettings.from_params({"train": ["x"], "resume": "some/dir", "name": "m"}, set())
    assert resume_point(named) == "some/dir"


def test_the_time_budget_leaves_room_for_every_pass_after_training() -> None:
    from trainer.settings import TrainSettings
    from trainer.train import final_eval_scale

    plain = TrainSettings.from_params({"train": ["x"], "average_checkpoints": False}, set())
    typed = TrainSettings.from_params({"train": ["x"], "types": "coarse", "average_checkpoints": False}, set())
    averaged = TrainSettings.from_params({"train": ["x"]}, set())
    prior = TrainSettings.from_params({"train": ["x"], "span_prior": True}, set())
    assert final_eval_scale(plain, 100, 0) == 1.0
    assert final_eval_scale(plain, 100, 300) == 4.0  # selection + held-out posts, 3x as many
    assert final_eval_scale(typed, 100, 300) == 8.0, "typed F1 reads both sets once more"
    assert final_eval_scale(averaged, 100, 300) == 5.0, "the checkpoint average reads the selection set once more"
    assert final_eval_scale(prior, 100, 300) == 7.0, "the span prior reads it twice (fit, threshold)"
