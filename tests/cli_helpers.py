"""Running the CLI in-process for tests of user mistakes."""

import pytest

from unite import cli


def user_error(argv: list[str], capsys, one_line: bool = True) -> str:
    """Run `python -m unite ARGV`; it must exit 2 with an 'error:' message and no traceback
    (with ``one_line``, a single line). Returns the message."""
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err, err
    if one_line:
        assert err.count("\n") == 1, err
    return err
