"""How the command line reports errors: one line for the package's own, a traceback for anything else.

The package's errors (``AVMNISTError``) name the file and what to do, so a
traceback would only bury that line; anything else is a bug or a surprise, and
its traceback is what a report needs. ``--traceback`` shows it for every error.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from avmnist_torch import AudioItemGenerator, ParameterError, export
from avmnist_torch.cli import main
from avmnist_torch.inspection import preview

N_TEST = 14


@pytest.fixture(scope="module")
def tree(synthetic_tree) -> Path:
    return synthetic_tree(n_train=4, n_test=N_TEST, noise_seconds=0.5)


@pytest.fixture(scope="module")
def exported(tree) -> Path:
    [path] = export(tree, split="test", scheme="clean", progress=False)
    return path


def run(capsys, *argv: str):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


# --- verify --rows and preview --index: out of range is an error, not a modulo ------------------


def test_verify_rows_out_of_range_is_one_line_naming_file_and_size(capsys, exported):
    status, out, err = run(capsys, "verify", str(exported), "--rows", "3", "70000", "--quiet")
    assert status == 2 and out == ""  # nothing was checked, so nothing is reported as matching
    assert err == (f"avmnist verify: error: {exported}: has {N_TEST} rows (0 to {N_TEST - 1}); "
                   "row 70000 is out of range\n")


def test_verify_negative_row_is_refused(capsys, exported):
    status, out, err = run(capsys, "verify", str(exported), "--rows", "-1", "--quiet")
    assert status == 2 and "row -1 is out of range" in err and "Traceback" not in err


@pytest.mark.parametrize("index", [N_TEST, 10_000, -1])
def test_preview_index_out_of_range_names_split_and_size(tree, tmp_path, index):
    out = tmp_path / "grid.png"
    with pytest.raises(ParameterError) as caught:
        preview(tree, out, index=index)
    message = str(caught.value)
    assert f"{tree}: the test split has {N_TEST} items (0 to {N_TEST - 1}); index {index} is out of range" == message
    assert not out.exists()


@pytest.mark.parametrize("index", [1.0, "2", True])
def test_preview_index_must_be_a_whole_number(tree, tmp_path, index):
    with pytest.raises(ParameterError, match="index must be a whole number"):
        preview(tree, tmp_path / "grid.png", index=index)


def test_preview_index_out_of_range_on_the_command_line(capsys, tree, tmp_path):
    status, out, err = run(capsys, "preview", "--root", str(tree), "--out", str(tmp_path / "p.png"), "--index", "99")
    assert status == 2 and out == "" and not (tmp_path / "p.png").exists()
    assert err == (f"avmnist preview: error: {tree}: the test split has {N_TEST} items (0 to {N_TEST - 1}); "
                   "index 99 is out of range\n")


# --- one line for the package's errors, a traceback for the rest ------------------------------


def test_package_error_is_one_line(capsys, tmp_path):
    missing = tmp_path / "missing.npy"
    status, out, err = run(capsys, "verify", str(missing), "--root", str(tmp_path))
    assert status == 1
    assert err.startswith("avmnist verify: error: ") and str(missing) in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("where", ["before", "after"])
def test_traceback_flag_shows_it_for_package_errors(capsys, tmp_path, where):
    missing = tmp_path / "missing.npy"
    argv = ["verify", str(missing), "--root", str(tmp_path)]
    argv = ["--traceback", *argv] if where == "before" else [*argv, "--traceback"]
    status, out, err = run(capsys, *argv)
    assert status == 1
    assert "Traceback (most recent call last)" in err and "StorageError" in err and str(missing) in err


def _fail_with(exc: BaseException):
    def image(self, index):
        raise exc

    return image


def test_unexpected_error_shows_its_traceback(capsys, monkeypatch, exported):
    # A RuntimeError from inside the generation is nothing the package raised on purpose: a bug to report.
    for method in ("spectrogram", "spectrograms"):
        monkeypatch.setattr(AudioItemGenerator, method, _fail_with(RuntimeError("boom from a library")))
    status, out, err = run(capsys, "verify", str(exported), "--rows", "1", "--quiet")
    assert status == 1
    assert "Traceback (most recent call last)" in err and "RuntimeError: boom from a library" in err
    assert "avmnist verify: unexpected error" in err


def test_unexpected_os_error_shows_its_traceback(capsys, monkeypatch, exported):
    for method in ("spectrogram", "spectrograms"):
        monkeypatch.setattr(AudioItemGenerator, method, _fail_with(OSError(5, "Input/output error")))
    status, out, err = run(capsys, "verify", str(exported), "--rows", "1", "--quiet")
    assert status == 1 and "Traceback (most recent call last)" in err and "OSError" in err


def test_ctrl_c_is_exit_130_without_traceback(capsys, monkeypatch, exported):
    for method in ("spectrogram", "spectrograms"):
        monkeypatch.setattr(AudioItemGenerator, method, _fail_with(KeyboardInterrupt()))
    status, out, err = run(capsys, "verify", str(exported), "--rows", "1", "--quiet")
    assert status == 130 and err == "avmnist verify: interrupted\n"


def test_a_reader_that_went_away_ends_the_command_quietly(capsys, monkeypatch, tree):
    # `avmnist info --root DATA | head -3`: head has gone when the output is flushed.
    read_end, write_end = os.pipe()
    os.close(read_end)
    with os.fdopen(write_end, "w") as closed_pipe:
        monkeypatch.setattr(sys, "stdout", closed_pipe)
        status = main(["info", "--root", str(tree)])  # 0 with a reader: every source is there
        err = capsys.readouterr().err
        assert status == 1 and err == ""  # no BrokenPipeError traceback, no "unexpected error"


def test_info_on_a_file_says_it_is_not_a_folder(capsys, tmp_path):
    file = tmp_path / "data.npy"
    file.write_bytes(b"")
    status, out, err = run(capsys, "info", "--root", str(file))
    assert status == 2 and out == ""
    assert err == (f"avmnist info: error: root {file} is a file, not a folder: give the data root, the folder that "
                   "holds recordings/, noise_recordings/ and avmnist/ ('avmnist download --root DATA' makes one)\n")


@pytest.mark.parametrize("action", ["list", "prune", "clear"])
def test_cache_dir_that_is_a_file_is_an_error(capsys, tmp_path, action):
    file = tmp_path / "cache"
    file.write_bytes(b"x")
    status, out, err = run(capsys, "cache", "--dir", str(file), action)
    assert status == 2 and out == "" and file.read_bytes() == b"x"
    assert err == (f"avmnist cache: error: --dir {file} is a file, not a folder: give the cache folder, or leave "
                   "--dir out for the default one\n")


def test_info_reports_the_image_files_and_how_to_get_them(capsys, synthetic_tree, tmp_path, tree):
    status, out, err = run(capsys, "info", "--root", str(tree))
    assert status == 0  # the audio half needs no images
    assert (f"  test  NOT FOUND: no MNIST test image file under {tree}: looked for t10k-images-idx3-ubyte[.gz]"
            in out)
    assert f"get it with 'avmnist download --root {tree} --only mnist_images' (download=True in Python)" in out
    with_images = synthetic_tree(tmp_path / "with-images", n_train=4, n_test=N_TEST, noise_seconds=0.5,
                                 mnist_images=True)
    status, out, err = run(capsys, "info", "--root", str(with_images), "--json")
    images = json.loads(out)["images"]
    assert status == 0 and images["test"] == {"found": True,
                                              "path": str(with_images / "mnist" / "t10k-images-idx3-ubyte.gz")}


def test_missing_sources_is_a_usage_error(capsys):
    status, out, err = run(capsys, "info")
    assert status == 2 and err == "avmnist info: error: give --root (or --recordings, --noises and --labels)\n"


def test_malformed_mirror_is_a_usage_error_in_one_line(capsys, tmp_path):
    status, out, err = run(capsys, "download", "--root", str(tmp_path), "--mirror", "nohost", "--quiet")
    assert status == 2 and err.startswith("avmnist download: error: ") and "scheme://host" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv, option", [
    (["export", "--scheme", "nope"], "--scheme"),
    (["export", "--workers", "0"], "--workers"),
    (["export", "--seed", "-1"], "--seed"),
    (["export", "--style", "2.0"], "--style"),
    (["verify", "f.npy", "--sample", "0"], "--sample"),
    (["preview", "--random", "-2"], "--random"),
])
def test_bad_option_values_are_usage_errors_before_any_work(capsys, argv, option):
    with pytest.raises(SystemExit) as caught:
        main(argv)
    err = capsys.readouterr().err
    assert caught.value.code == 2 and f"argument {option}:" in err and "Traceback" not in err


def test_rows_within_range_still_verify(capsys, exported):
    status, out, err = run(capsys, "verify", str(exported), "--rows", "0", str(N_TEST - 1), "--quiet")
    assert status == 0 and "regenerated 2" in out and "all regenerated rows match" in out


@pytest.mark.parametrize("action, verb", [("list", "left over"), ("prune", "removed"), ("clear", "removed")])
def test_cache_reports_the_size_of_leftover_temporaries_before_removing_them(capsys, tmp_path, action, verb):
    import subprocess

    from avmnist_torch import files

    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = tmp_path / f".clips.f32.tmp-{files.host_name()}-{int(ended.stdout)}-0a1b2c3d"
    leftover.write_bytes(b"\0" * 300_000)
    status, out, err = run(capsys, "cache", "--dir", str(tmp_path), action)
    assert status == 0 and err == ""
    assert f"{verb}: 1 temporary file of processes no longer running, 0.3 MB\n  {leftover}\n" in out
    assert leftover.exists() == (action == "list")


@pytest.mark.parametrize("given", [["--epoch", "0"], ["--snr-range-db", "0"], ["--redraw-recording"],
                                   ["--epoch", "2", "--snr-range-db", "0"]])
def test_per_epoch_options_with_fixed_draws_are_refused_even_when_zero(capsys, tmp_path, given):
    status, out, err = run(capsys, "export", "--root", str(tmp_path), "--split", "test", *given)
    flags = ", ".join(flag for flag in given if flag.startswith("--"))
    assert status == 2 and out == ""
    assert err == f"avmnist export: error: {flags}: only with --draws per_epoch\n"
