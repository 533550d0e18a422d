"""Bad training input fails fast with one line naming the file and the problem."""

import lzma
from pathlib import Path

import pytest
from typer.testing import CliRunner

from moderation.errors import DataError
from moderation.labels import LABELS
from training import data
from training.train import app

HEADER = "id,comment_text," + ",".join(LABELS)


def write(folder: Path, name: str, content: bytes | str) -> Path:
    path = folder / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "file is empty"),
        (HEADER + "\n", "has a header but no rows"),
        ("id,comment_text,toxic\n1,hi,0\n", "missing column(s) severe_toxic"),
        (HEADER + "\n1,hello,0,0,2,0,0,0\n", "label obscene must be 0/1, found '2' on data row 1"),
        (HEADER + "\n1,hello,0,0,yes,0,0,0\n", "label obscene must be 0/1"),
        (HEADER.encode() + b"\n1,caf\xe9,0,0,0,0,0,0\n", "not UTF-8 text"),
    ],
)
def test_malformed_train_file_names_file_and_problem(tmp_path, content, problem):
    write(tmp_path, "train.csv", content)
    with pytest.raises(DataError) as error:
        data.load_train(tmp_path)
    assert "train.csv" in str(error.value)
    assert problem in str(error.value)


def test_missing_train_file_is_reported(tmp_path):
    with pytest.raises(DataError, match="no train.csv"):
        data.load_train(tmp_path)


def test_cli_exits_non_zero_with_one_clear_line(tmp_path):
    write(tmp_path, "train.csv", HEADER + "\n1,hello,0,0,2,0,0,0\n")
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path), "--no-track"])
    assert result.exit_code == 1
    assert "error:" in result.output and "label obscene must be 0/1" in result.output


def test_compressed_and_plain_files_hash_alike(tmp_path):
    body = HEADER + "\n1,hello there,0,0,0,0,0,0\n"
    plain = tmp_path / "plain"
    packed = tmp_path / "packed"
    plain.mkdir(), packed.mkdir()
    write(plain, "train.csv", body)
    write(packed, "train.csv.xz", lzma.compress(body.encode()))
    assert data.load_train(plain).files[0].sha256 == data.load_train(packed).files[0].sha256


def test_full_kaggle_layout_is_accepted(tmp_path):
    # GIVEN Kaggle's train.csv, test.csv and test_labels.csv (with -1 for unscored rows)
    write(tmp_path, "train.csv", HEADER + "\n1,hello,0,0,0,0,0,0\n2,you idiot,1,0,0,0,1,0\n")
    write(tmp_path, "test.csv", "id,comment_text\na,fine\nb,not scored\n")
    labels = "id," + ",".join(LABELS) + "\na,0,0,0,0,0,0\nb,-1,-1,-1,-1,-1,-1\n"
    write(tmp_path, "test_labels.csv", labels)
    # WHEN loaded  THEN every train row counts as real-rate and only scored test rows remain
    training = data.load_train(tmp_path)
    test, files = data.load_test(tmp_path)
    assert training.frame["unbiased"].all()
    assert list(test["id"]) == ["a"] and len(files) == 2
