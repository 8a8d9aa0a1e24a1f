"""The handwriting benchmark's tracer (benchmarks/handwriting.py): the pen path it draws a
scanned digit along keeps what the writer drew."""

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from benchmarks import handwriting as hw


def _bitmap(lines, width: int, blot=None) -> np.ndarray:
    """A 32x32 bool bitmap like optdigits': polylines `width` pixels wide, and a filled ellipse."""
    img = Image.new("L", (32, 32), 0)
    pen = ImageDraw.Draw(img)
    for line in lines:
        pen.line(line, fill=255, width=width)
    if blot:
        pen.ellipse(blot, fill=255)
    return np.asarray(img) > 127


def _loops(points: np.ndarray) -> int:
    """How many holes the centre line encloses."""
    on = np.zeros((40, 40), bool)
    on[np.round(points[:, 0]).astype(int) + 4, np.round(points[:, 1]).astype(int) + 4] = True
    return ndimage.label(~ndimage.binary_dilation(on))[1] - 1


def test_the_short_foot_of_a_4_below_its_bar_is_kept():
    # The bar's centre is row 20, 4 pixels thick; the upright goes on to row 25.
    four = _bitmap([[(8, 3), (6, 20), (24, 20)], [(20, 8), (20, 25)]], 4)
    points = hw.centre_line(four)
    assert points[:, 0].max() >= 22.5  # eroding each end by the half-width stopped at row 21
    below = points[points[:, 0] > 21]
    assert np.all(np.abs(below[:, 1] - 20) <= 1.5)  # on the upright


def test_a_loop_the_scan_filled_in_is_drawn_round():
    nine = _bitmap([[(20, 10), (19, 29)]], 4, blot=(9, 3, 21, 15))
    assert _loops(hw.centre_line(nine)) == 1


def test_a_plain_stroke_gets_no_loop_and_no_spurs():
    one = _bitmap([[(16, 3), (15, 28)]], 5)
    points = hw.centre_line(one)
    assert _loops(points) == 0
    assert np.ptp(points[:, 1]) <= 2.5  # one line, no branches towards the corners
    assert points[:, 0].min() <= 6 and points[:, 0].max() >= 25


def test_an_open_loop_stays_one_loop():
    img = Image.new("L", (32, 32), 0)
    ImageDraw.Draw(img).ellipse((6, 3, 25, 28), outline=255, width=4)
    zero = np.asarray(img) > 127
    assert _loops(hw.centre_line(zero)) == 1


def test_each_canvas_rendering_is_paired_with_the_upload_of_its_own_bitmap():
    from benchmarks import bench_handwriting as bench

    bitmaps = np.zeros((2, 32, 32), bool)
    bitmaps[0, 4:28, 14:18] = True  # a 1
    bitmaps[1, 6:26, 8:24] = True  # a block
    drawings = list(hw.optdigits_set(bitmaps, np.array([1, 7]), 0, "optdigits tra"))
    groups = ["letters x"] + [d.group for d in drawings] + ["scribbles y"]
    up = bench.upload_of(groups)
    assert up.tolist() == [-1, 5, 5, 5, 5, -1, 10, 10, 10, 10, -1, -1]
    assert all(groups[i].endswith("uploaded") for i in up[up >= 0])
    with pytest.raises(ValueError, match="out of order"):
        bench.upload_of(groups[:1] + groups[2:])  # one rendering missing


def test_lost_in_drawing_counts_only_renderings_whose_upload_reads_right():
    from benchmarks import bench_handwriting as bench

    groups = [f"optdigits cv {k}" for k in ("traced thin", "traced medium", "traced thick")]
    groups = (groups + ["optdigits cv scanned", "optdigits cv uploaded"]) * 2
    labels = np.array([3] * 5 + [4] * 5)
    # Bitmap 1: the upload is right, two renderings wrong. Bitmap 2: the upload is wrong too.
    predicted = np.array([3, 5, 5, 3, 3, 4, 9, 4, 4, 9])
    prep = bench.Prepared(np.zeros((10, 28, 28)), np.ones(10, bool), labels, groups, [()] * 10, [])
    lost = bench.lost_in_drawing(
        prep, bench.Scored(predicted, np.ones(10), np.zeros(10, bool), np.zeros(10, bool))
    )
    assert lost["n"] == 8 and lost["misread"] == 3 / 8
    assert lost["misread_upload_right"] == 2 / 8
    assert lost["accuracy_where_upload_right"] == 2 / 4


def test_missing_fonts_names_each_absent_font_file(tmp_path, monkeypatch):
    """The letter set silently draws from the fonts it finds; the bench warns with this list."""
    (tmp_path / f"{hw.HERSHEY_FONTS[0]}.jhf").write_text("")
    present = tmp_path / "present.ttf"
    present.write_bytes(b"")
    monkeypatch.setattr(hw, "HERSHEY_DIR", tmp_path)
    monkeypatch.setattr(hw, "TTF_FONTS", (str(present), str(tmp_path / "absent.ttf")))
    missing = hw.missing_fonts()
    assert str(tmp_path / "absent.ttf") in missing
    assert str(present) not in missing
    assert str(tmp_path / f"{hw.HERSHEY_FONTS[0]}.jhf") not in missing
    assert len(missing) == len(hw.HERSHEY_FONTS)  # the other Hershey fonts and the absent TTF
    for package in ("hershey-fonts-data", "fonts-sjfonts"):
        assert package in hw.FONT_PACKAGES.split()


def test_error_grid_draws_each_unflagged_error_beside_its_upload(tmp_path):
    from PIL import Image

    from benchmarks import bench_handwriting as bench

    groups = [f"optdigits tra {k}" for k in ("traced thin", "traced medium", "traced thick")]
    groups = (groups + ["optdigits tra scanned", "optdigits tra uploaded"]) * 2 + ["letters x"]
    labels = np.array([1] * 5 + [8] * 5 + [-1])
    x28 = np.zeros((11, 28, 28), np.float32)
    x28[4, :, 13:15] = 1.0  # the first bitmap's upload: a bar
    # Wrong and unflagged: 1 (traced medium) and 9 (the second upload). Wrong but flagged: 2.
    predicted = np.array([1, 7, 7, 1, 1, 8, 8, 8, 8, 3, 4])
    flagged = np.zeros(11, bool)
    flagged[2] = True
    confidence = np.linspace(0.5, 1.0, 11)
    prep = bench.Prepared(x28, np.ones(11, bool), labels, groups, [()] * 11, [])
    scored = bench.Scored(predicted, confidence, flagged, np.zeros(11, bool))
    path = tmp_path / "grid.png"
    assert bench.error_grid(prep, scored, path) == 2
    rows = path.with_suffix(".tsv").read_text().splitlines()[1:]
    assert [r.split("\t")[1:5] for r in rows] == [
        ["1", "optdigits tra traced medium", "1", "7"],
        ["9", "optdigits tra uploaded", "8", "3"],
    ]
    assert rows[0].split("\t")[6] == "1"  # its upload (index 4) reads right
    sheet = np.asarray(Image.open(path))
    assert sheet.shape == (84 + 16, 10 * (2 * 84 + 10))
    left, right = sheet[14:98, :84], sheet[14:98, 86:170]
    assert left.max() == 0 and right.max() == 255  # the error drew nothing; its upload a bar
