"""`mlops-desktop --screenshot X --view models[:tab]` renders the Models area over the demo workspace, not blank."""

from __future__ import annotations

import argparse

import pytest
from models_helpers import demo_copy
from PySide6.QtGui import QImage

from mlops_desktop.errors import UsageError


def distinct_colors(image: QImage) -> int:
    step = max(1, image.width() // 200)
    return len({image.pixel(x, y) for x in range(0, image.width(), step) for y in range(0, image.height(), step)})


@pytest.mark.parametrize(("view", "theme", "size"), [
    ("models", "light", "1280x800"), ("models:version", "dark", "1600x1000"), ("models:serve", "light", "1280x800"),
    ("models:try", "dark", "1280x800")])
def test_screenshot_of_the_models_area(qapp, tmp_path, request, view, theme, size):
    from mlops_desktop.gui import app

    home = demo_copy(request, tmp_path)
    out = tmp_path / "shot.png"
    args = argparse.Namespace(home=str(home), screenshot=str(out), view=view, size=size, theme=theme)
    assert app.run(args) == 0
    image = QImage(str(out))
    w, h = (int(v) for v in size.split("x"))
    assert (image.width(), image.height()) == (w, h)
    assert distinct_colors(image) > 60


def test_an_unknown_models_tab_is_a_usage_error(qapp, tmp_path, request):
    from mlops_desktop.gui import app

    home = demo_copy(request, tmp_path)
    args = argparse.Namespace(home=str(home), screenshot=str(tmp_path / "x.png"), view="models:nope",
                              size="1280x800", theme="light")
    with pytest.raises(UsageError, match="no tab 'nope' in Models"):
        app.run(args)
