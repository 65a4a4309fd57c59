"""Camera sources: lossless files, truncated files, image folders, streams that die and come
back or never do - while other sources keep going."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from adfl_deploy.errors import ConfigError
from adfl_deploy.pipeline.sources import CameraSource, SourceConfig


def drain(source: CameraSource, timeout: float = 10.0) -> list:
    frames, deadline = [], time.time() + timeout
    while time.time() < deadline and not source.finished:
        frame = source.get(timeout=0.05)
        if frame is not None:
            frames.append(frame)
    return frames


@pytest.fixture
def video(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(25):
        writer.write(np.full((48, 64, 3), i * 10, np.uint8))
    writer.release()
    return path


def test_a_file_is_read_losslessly_with_timestamps(video):
    source = CameraSource("cam1", str(video), SourceConfig(queue_size=2)).start()
    frames = drain(source)
    assert [f.index for f in frames] == list(range(25)) and source.state == "ended"
    assert frames[10].timestamp == pytest.approx(1.0)  # 10 FPS
    assert frames[3].image.shape == (48, 64, 3)


def test_a_truncated_file_ends_cleanly(video):
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 2])
    source = CameraSource("cam1", str(video)).start()
    frames = drain(source)
    assert source.state == "ended" and 0 < len(frames) < 25


def test_image_folder_skips_unreadable_files(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i:03d}.jpg"), np.full((20, 10, 3), 50, np.uint8))
    (tmp_path / "003.jpg").write_bytes(b"not a jpeg")
    source = CameraSource("cam1", str(tmp_path)).start()
    frames = drain(source)
    assert len(frames) == 3 and source.skipped == 1 and source.state == "ended"


def test_empty_folder_and_missing_paths_fail_in_one_line(tmp_path):
    with pytest.raises(ConfigError, match="has no images"):
        CameraSource("cam1", str(tmp_path))
    with pytest.raises(ConfigError, match="no such file"):
        CameraSource("cam1", str(tmp_path / "nope.mp4"))


class FlakyStream:
    """A live stream that delivers ``good`` frames per connection, then fails; it accepts
    ``connections`` connections in all, after that it cannot be opened."""

    opened = 0

    def __init__(self, good: int, connections: int) -> None:
        FlakyStream.opened += 1
        self.left = good if FlakyStream.opened <= connections else 0
        self.alive = FlakyStream.opened <= connections

    def read(self):
        if self.left > 0:
            self.left -= 1
            time.sleep(0.005)
            return True, np.zeros((8, 8, 3), np.uint8)
        self.alive = False
        return False, None

    def isOpened(self) -> bool:
        return self.alive

    def release(self) -> None:
        pass


def test_a_stream_that_dies_and_comes_back_is_reconnected():
    FlakyStream.opened = 0
    config = SourceConfig(reconnect_attempts=3, backoff_seconds=0.01, queue_size=100)
    source = CameraSource("cam1", "rtsp://fake", config, opener=lambda _: FlakyStream(good=5, connections=2)).start()
    frames = drain(source)
    assert len(frames) == 10 and source.reconnects >= 1  # 5 before the drop, 5 after reconnecting
    assert source.state == "dropped"  # the third connection never opens: given up after 3 tries


def test_a_dead_stream_is_dropped_while_a_file_keeps_going(video):
    FlakyStream.opened = 10  # every open fails
    config = SourceConfig(reconnect_attempts=2, backoff_seconds=0.01)
    dead = CameraSource("cam2", "rtsp://dead", config, opener=lambda _: FlakyStream(good=0, connections=0)).start()
    alive = CameraSource("cam1", str(video)).start()
    frames = drain(alive)
    drain(dead)
    assert len(frames) == 25 and dead.state == "dropped" and dead.reconnects == 2


def test_live_streams_drop_the_oldest_frames_when_the_consumer_lags():
    FlakyStream.opened = 0
    source = CameraSource(
        "cam1",
        "rtsp://fast",
        SourceConfig(queue_size=2, reconnect_attempts=0),
        opener=lambda _: FlakyStream(good=20, connections=1),
    ).start()
    time.sleep(0.5)  # nobody reads while 20 frames arrive
    frames = drain(source)
    assert len(frames) <= 2 and source.dropped_frames >= 18
    assert frames[-1].index == 19  # the newest frame survived
