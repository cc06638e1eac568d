"""Helpers shared by the command-line tests."""

from relit_eqx.cli import main


def train_fails(capsys, args, *fragments):
    """`relit-eqx train ARGS` exits 2 and its stderr holds every fragment; returns it."""
    rc = main(["train", *args])
    err = capsys.readouterr().err
    assert rc == 2, err
    for f in fragments:
        assert f in err, err
    return err
