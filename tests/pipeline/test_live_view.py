"""The live mosaic (``adfl serve``'s view of a running ``adfl track``): each camera shrunk to a
tile and annotated there, tiles shrinking so that many cameras stay one screen wide."""

import numpy as np
import pytest

from adfl_deploy.events import FrameTracked, TickStats
from adfl_deploy.pipeline.sinks import annotate_tile, fitted_tile, grid_shape, mosaic
from adfl_deploy.store.model import fingerprint
from adfl_deploy.store.schema import open_reader
from adfl_deploy.store.writer import LIVE_MAX_WIDTH, StoreWriter


@pytest.mark.parametrize(("count", "shape"), [(1, (1, 1)), (2, (1, 2)), (3, (2, 2)), (4, (2, 2)), (5, (2, 3)), (40, (6, 7))])
def test_the_grid_is_the_most_nearly_square_that_holds_every_camera(count, shape):
    assert grid_shape(count) == shape


def test_tiles_shrink_with_their_aspect_to_fit_the_width():
    assert fitted_tile(4, (216, 384), 1920) == (216, 384)  # 2 columns x 384 = 768
    assert fitted_tile(40, (216, 384), 1920) == (154, 274)  # 7 columns: 1920 // 7 = 274, 216 * 274 / 384 = 154.1


def test_a_box_lands_where_the_frame_put_it_after_shrinking():
    """A 800x400 frame shrunk 4x: the box (100, 100)-(300, 200) is drawn at (25, 25)-(75, 50)."""
    image = np.zeros((400, 800, 3), np.uint8)
    tile = annotate_tile(image, np.array([[100.0, 100.0, 300.0, 200.0]]), np.array([7]), [None], "", (100, 200))
    assert tile.shape == (100, 200, 3)
    drawn = tile.max(axis=2) > 0
    assert drawn[40, 25] and drawn[40, 75]  # left and right edges, below the label
    assert drawn[50, 50] or drawn[49, 50]  # bottom edge
    assert not drawn[40, 50] and not drawn[90, 150]  # inside the box, outside it
    assert not image.any()  # the frame itself is untouched


def test_tiles_go_into_the_grid_row_by_row():
    tiles = [np.full((10, 20, 3), v, np.uint8) for v in (10, 20, 30)]
    grid = mosaic(tiles, tile=(10, 20))
    assert grid.shape == (20, 40, 3)
    assert grid[5, 5, 0] == 10 and grid[5, 25, 0] == 20 and grid[15, 5, 0] == 30 and grid[15, 25, 0] == 0


def test_the_stores_live_mosaic_of_forty_cameras_is_one_screen_wide(tmp_path):
    cameras = [f"cam{i}" for i in range(40)]
    writer = StoreWriter(tmp_path / "adfl.db", cameras, fingerprint("colour-histogram"), live_fps=1000)
    image = np.full((432, 768, 3), 90, np.uint8)
    boxes = np.array([[10.0, 20.0, 60.0, 200.0]], np.float32)
    for cam in cameras:
        writer.on_event(FrameTracked(cam, 0, 0.0, image, boxes, np.array([1]), np.ones(1, np.float32), [3]))
    writer.on_event(TickStats(1, {}, {}, 40, 1))
    writer.close()
    import cv2

    conn = open_reader(tmp_path / "adfl.db")
    (jpeg,) = conn.execute("SELECT jpeg FROM live").fetchone()
    live = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert live.shape[1] <= LIVE_MAX_WIDTH and live.shape[:2] == (6 * 154, 7 * 274)
