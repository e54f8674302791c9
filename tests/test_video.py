"""Videos through `srsdk upscale`, read back with PyAV (first frames of the shared clips)."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srsdk.cli.demo import SHIPPED_PHOTO
from srsdk.cli.main import main
from srsdk.errors import InputError
from srsdk.io.video import upscale_video
from srsdk.upscaler import Upscaler

av = pytest.importorskip("av")


def _streams(path: Path) -> dict[str, object]:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        info = {
            "frames": sum(1 for _ in c.decode(video=0)),
            "size": (v.width, v.height),
            "rate": v.average_rate,
            "codec": v.codec_context.name,
            "audio": [(a.codec_context.name, a.rate) for a in c.streams.audio],
        }
    return info


def _write(path: Path, frames: list[np.ndarray], *, pix_fmt: str = "yuv420p", rate: int = 25,
           rotation: tuple[int, bool] | None = None, matrix: str | None = None) -> Path:  # fmt: skip
    """Encode RGB ``frames`` with libx264 (optionally with a display rotation and flip, or
    converted with the YUV ``matrix`` and tagged with it)."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=rate)
        s.height, s.width = frames[0].shape[:2]
        s.pix_fmt = pix_fmt
        if rotation is not None:
            s.set_display_rotation(rotation[0], hflip=rotation[1])
        if matrix is not None:
            s.codec_context.colorspace = {"itu709": 1, "itu601": 6}[matrix]
            s.codec_context.color_range = 1
        for frame in frames:
            rgb = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            for p in s.encode(rgb if matrix is None else rgb.reformat(format=pix_fmt, dst_colorspace=matrix, dst_color_range=1)):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


@pytest.mark.shared
def test_video_keeps_rate_audio_and_frame_count(videos: Path, tmp_path: Path) -> None:
    src, dst = videos / "car-detection.mp4", tmp_path / "car_x2.mp4"
    assert main(["upscale", str(src), str(dst), "--frames", "30", "--device", "cpu"]) == 0
    got, original = _streams(dst), _streams(src)
    assert got["frames"] == 30 and got["size"] == (1536, 864) and got["codec"] == "h264"
    assert got["rate"] == original["rate"] == 12.5
    assert got["audio"] == [("aac", 48000)]
    with av.open(str(dst)) as c:  # the audio was copied, not re-encoded, and trimmed to the 30 frames
        seconds = sum(p.duration for p in c.demux(c.streams.audio[0]) if p.size) * c.streams.audio[0].time_base
    assert 30 / 12.5 - 0.1 <= seconds <= 30 / 12.5 + 0.1
    with av.open(str(src)) as c:
        first = next(c.decode(video=0)).to_ndarray(format="rgb24")
    with av.open(str(dst)) as c:
        decoded = next(c.decode(video=0)).to_ndarray(format="rgb24").astype(np.int16)
    with Upscaler(scale=2, device="cpu") as up:
        expected = up(first).astype(np.int16)
    assert np.abs(decoded - expected).mean() < 3  # H.264 at CRF 18 on top of the network's output


@pytest.mark.shared
def test_matroska_without_audio_and_odd_x3_sizes(videos: Path, tmp_path: Path) -> None:
    src = videos / "book.mkv"
    with av.open(str(src)) as c:
        frame = next(c.decode(video=0)).to_ndarray(format="rgb24")
    odd = _write(tmp_path / "odd.mkv", [frame[:159, :213]] * 3, pix_fmt="yuv444p", rate=30)  # an odd size first
    dst = tmp_path / "odd_x3.mkv"
    with Upscaler(scale=3, device="cpu") as up:
        report = upscale_video(odd, dst, up)
    assert (report.frames, report.size, report.copied_streams) == (3, (640, 478), 0)  # 639x477 padded to even
    assert _streams(dst)["frames"] == 3


@pytest.mark.parametrize(("degrees", "hflip"), [(90, False), (-90, True), (180, False)])
def test_rotation_and_flips_are_carried_over(tmp_path: Path, degrees: int, hflip: bool) -> None:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (24, 40, 3), dtype=np.uint8) for _ in range(4)]
    src = _write(tmp_path / "phone.mp4", frames, rotation=(degrees, hflip))  # as phones store it: sideways, shown rotated
    dst = tmp_path / "phone_x2.mp4"
    with Upscaler(scale=2, device="cpu") as up:
        report = upscale_video(src, dst, up)
    assert report.frames == 4 and report.size == (80, 48)  # the coded frames are upscaled as stored

    def orientation(path: Path) -> tuple[float, bytes]:
        with av.open(str(path)) as c:
            frame = next(c.decode(video=0))
            matrix = next(bytes(d) for d in frame.side_data if d.type.name == "DISPLAYMATRIX")
            return frame.rotation, matrix

    assert orientation(dst) == orientation(src)
    assert orientation(dst)[0] % 360 == degrees % 360


def test_a_video_without_a_display_matrix_gets_none(tmp_path: Path) -> None:
    from srsdk.io.video import display_matrix

    src = _write(tmp_path / "plain.mkv", [np.zeros((16, 32, 3), np.uint8)])
    assert display_matrix(src) is None
    (tmp_path / "garbage.mp4").write_bytes(b"not a video")
    assert display_matrix(tmp_path / "garbage.mp4") is None

def test_a_pyav_older_than_the_oldest_tried_is_refused_by_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import av

    monkeypatch.setattr(av, "__version__", "17.0.0")  # 17 lacks the display matrix setter
    with pytest.raises(InputError, match=r"videos need PyAV >= 18, and 17\.0\.0 is installed: pip install -U"):
        upscale_video(tmp_path / "in.mp4", tmp_path / "out.mp4", None)



@pytest.mark.shared
def test_a_failing_run_leaves_nothing_at_the_target(videos: Path, tmp_path: Path) -> None:
    class Failing(Upscaler):
        seen = 0

        def process(self, frame):  # type: ignore[no-untyped-def]
            Failing.seen += 1
            if Failing.seen == 4:
                raise KeyboardInterrupt
            return super().process(frame)

    dst = tmp_path / "out.mp4"
    with Failing(scale=2, device="cpu") as up, pytest.raises(KeyboardInterrupt):
        upscale_video(videos / "bottle-detection.mp4", dst, up, max_frames=10)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.shared
def test_truncated_and_garbage_inputs(videos: Path, tmp_path: Path) -> None:
    data = (videos / "book.mkv").read_bytes()
    truncated = tmp_path / "truncated.mkv"
    truncated.write_bytes(data[: len(data) // 3])
    dst = tmp_path / "out.mkv"
    with Upscaler(scale=2, device="cpu") as up:
        report = upscale_video(truncated, dst, up, max_frames=200)
        assert 0 < report.frames < 110  # the frames that decoded, no more
        # What the stream's DURATION tag promised is reported, not hidden (within a frame: time rounds).
        assert abs(report.missing_frames - (109 - report.frames)) <= 1
        garbage = tmp_path / "garbage.mp4"
        garbage.write_bytes(b"\x00" * 4096)
        with pytest.raises(InputError, match="cannot open as a video"):
            upscale_video(garbage, tmp_path / "g.mp4", up)
        with pytest.raises(InputError, match="codec 'nosuchcodec' is not available"):
            upscale_video(truncated, tmp_path / "c.mp4", up, codec="nosuchcodec")
        with pytest.raises(InputError, match=r"unsupported output container '\.gif'"):
            upscale_video(truncated, tmp_path / "c.gif", up)
        with pytest.raises(InputError, match="output folder does not exist"):
            upscale_video(truncated, tmp_path / "missing" / "c.mp4", up)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["garbage.mp4", "out.mkv", "truncated.mkv"]


@pytest.mark.shared
def test_raw_pipe_mode_with_a_real_producer(videos: Path) -> None:
    producer = (
        "import av, sys\n"
        f"c = av.open({str(videos / 'bottle-detection.mp4')!r})\n"
        "for i, f in enumerate(c.decode(video=0)):\n"
        "    if i == 4: break\n"
        "    sys.stdout.buffer.write(f.reformat(width=160, height=90).to_ndarray(format='rgb24').tobytes())\n"
    )
    frames = subprocess.run([sys.executable, "-c", producer], capture_output=True, check=True).stdout
    assert len(frames) == 4 * 160 * 90 * 3
    done = subprocess.run([sys.executable, "-m", "srsdk", "upscale", "-", "-", "--raw", "160x90", "--device", "cpu"],
                          input=frames, capture_output=True, check=True)  # fmt: skip
    assert len(done.stdout) == 4 * 320 * 180 * 3
    first = np.frombuffer(done.stdout[: 320 * 180 * 3], np.uint8).reshape(180, 320, 3)
    with Upscaler(scale=2, device="cpu") as up:
        expected = up(np.frombuffer(frames[: 160 * 90 * 3], np.uint8).reshape(90, 160, 3))
    np.testing.assert_array_equal(first, expected)
    # Two whole frames, then a part: the whole ones still come out, then the error.
    part = 160 * 90 * 3 * 2 + 1000
    broken = subprocess.run([sys.executable, "-m", "srsdk", "upscale", "-", "-", "--raw", "160x90", "--device", "cpu"],
                            input=frames[:part], capture_output=True, check=False)  # fmt: skip
    assert broken.returncode == 1 and b"stdin ended inside a frame" in broken.stderr
    assert broken.stdout == done.stdout[: 2 * 320 * 180 * 3]
    first_two = subprocess.run([sys.executable, "-m", "srsdk", "upscale", "-", "-", "--raw", "160x90", "--device", "cpu",
                                "--frames", "2"], input=frames, capture_output=True, check=True)  # fmt: skip
    assert first_two.stdout == done.stdout[: 2 * 320 * 180 * 3]
    # A reader that stops early (head -c) is not an error, and leaves no traceback.
    shell = f"{sys.executable} -m srsdk upscale - - --raw 160x90 --device cpu | head -c 10 > /dev/null"
    closed = subprocess.run(["bash", "-o", "pipefail", "-c", shell], input=frames, capture_output=True, check=False)
    assert closed.returncode == 0 and b"the output pipe was closed after" in closed.stderr
    assert b"Traceback" not in closed.stderr and b"error" not in closed.stderr


@pytest.mark.shared
def test_sigterm_mid_video_leaves_nothing_at_the_target(videos: Path, tmp_path: Path) -> None:
    """A SIGTERM (timeout, kill, a scheduler) cleans up as Ctrl-C does."""
    import signal
    import time

    dst = tmp_path / "out.mp4"
    run = subprocess.Popen([sys.executable, "-m", "srsdk", "upscale", str(videos / "car-detection.mp4"), str(dst),
                            "--device", "cpu"], stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 240
    while not [p for p in tmp_path.iterdir() if p.name.endswith(".part")] and time.monotonic() < deadline:
        time.sleep(0.2)  # until the output is being written
    time.sleep(1.0)
    run.send_signal(signal.SIGTERM)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 143 and b"srsdk: terminated" in stderr  # 128 + SIGTERM, as shells report it
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("matrix", "codec"), [("itu709", None), ("itu601", None), (None, None), (None, "libx264rgb")])
def test_colours_keep_their_meaning_at_the_larger_size(tmp_path: Path, matrix: str | None, codec: str | None) -> None:
    """A flat saturated colour comes back as it went in, and the output says which YUV matrix
    it holds: untagged, a 1920x1080 output would be taken as BT.709 by players, so an
    untagged SD input (taken as BT.601) must not come out untagged."""
    red = np.zeros((360, 640, 3), np.uint8)
    red[...] = (200, 40, 40)
    src = _write(tmp_path / "red.mp4", [red] * 2, matrix=matrix)
    dst = tmp_path / "red_x2.mkv"
    with Upscaler(scale=2, device="cpu") as up:
        report = upscale_video(src, dst, up, codec=codec)
    assert (report.frames, report.missing_frames) == (2, 0)
    with av.open(str(dst)) as c:
        tag = c.streams.video[0].codec_context.colorspace
        assert tag == (1 if matrix == "itu709" else 6) if codec is None else tag in (0, 2)  # RGB: no YUV matrix
        shown = next(c.decode(video=0)).to_ndarray(format="rgb24")  # as a player decodes it: by its tag
    assert np.abs(shown[360, 640].astype(int) - (200, 40, 40)).max() <= 3


@pytest.mark.shared
@pytest.mark.parametrize("matrix", ["itu709", "itu601"])
def test_decoded_frames_keep_their_brightness(set14: Path, tmp_path: Path, matrix: str) -> None:
    """A photo stored losslessly as yuv420p decodes to its own mean level: swscale's default
    YUV to RGB path darkened it by about one level (-1.1 on this crop at BT.709)."""
    from PIL import Image

    from srsdk.io.video_colour import matrix_of, rgb_of

    photo = np.asarray(Image.open(set14 / "baboon.png").convert("RGB"))[:480, :480]
    src = tmp_path / "lossless.mkv"
    with av.open(str(src), "w") as c:
        s = c.add_stream("libx264", rate=25, options={"qp": "0"})  # lossless: the YUV planes come back as written
        s.height, s.width, s.pix_fmt = 480, 480, "yuv420p"
        s.codec_context.colorspace, s.codec_context.color_range = {"itu709": 1, "itu601": 6}[matrix], 1
        rgb = av.VideoFrame.from_ndarray(np.ascontiguousarray(photo), format="rgb24")
        for p in [*s.encode(rgb.reformat(format="yuv420p", dst_colorspace=matrix, dst_color_range=1)), *s.encode(None)]:
            c.mux(p)
    with av.open(str(src)) as c:
        decoded = rgb_of(next(c.decode(video=0)), matrix_of(c.streams.video[0]))
    shift = decoded.astype(float).mean(axis=(0, 1)) - photo.mean(axis=(0, 1))
    assert np.abs(shift).max() < 0.25, shift


def test_libx265_decode_times_of_one_or_two_frames_are_mended_before_muxing(tmp_path: Path) -> None:
    # Straight through PyAV with srsdk's libx265 settings, the way srsdk encodes: without the
    # mend, 5 of these 12 MP4s failed to mux in each of three fresh processes.
    from srsdk.io.video_output import encoder_for, mend_x265_dts

    encoder, pix_fmt, options = encoder_for(tmp_path / "x.mp4", "h265", 18)
    photo = np.asarray(Image.open(SHIPPED_PHOTO).convert("RGB").resize((1536, 864)))
    for i in range(12):
        dst = tmp_path / f"short{i}.mp4"
        with av.open(str(dst), "w") as c:
            s = c.add_stream(encoder, rate=25, options=options)
            s.width, s.height, s.pix_fmt = 1536, 864, pix_fmt
            packets = []
            for n in range(1 + i % 2):
                frame = av.VideoFrame.from_ndarray(np.roll(photo, 8 * n, axis=1), format="rgb24")
                frame.pts = n
                packets += s.encode(frame)
            packets += s.encode(None)
            mend_x265_dts(packets)
            for packet in packets:
                c.mux(packet)
        assert _streams(dst)["frames"] == 1 + i % 2


@pytest.mark.shared
def test_h265_outputs_of_one_or_two_frames_get_valid_decode_times(videos: Path, tmp_path: Path) -> None:
    # libx265 leaves them uninitialised under three frames (x265 issue 781): `srsdk upscale
    # --codec h265 --frames 2` failed in 4 of 26 runs with "Not yet implemented in FFmpeg" or
    # EINVAL from the muxer. In this process the garbage happens to be rare; the test above
    # forces the case.
    with Upscaler(scale=2, device="cpu") as up:
        for i in range(2):
            dst = tmp_path / f"short{i}.{'mp4' if i % 2 else 'mkv'}"
            upscale_video(videos / "car-detection.mp4", dst, up, codec="h265", max_frames=1 + i % 2)
            with av.open(str(dst)) as c:
                times = [(p.pts, p.dts) for p in c.demux(video=0) if p.size]
            mp4 = dst.suffix == ".mp4"  # Matroska stores no decode times
            assert all(dts is not None and 0 <= dts <= pts if mp4 else dts is None for pts, dts in times), times
            assert _streams(dst)["frames"] == len(times) == 1 + i % 2


@pytest.mark.shared
def test_containers_codecs_and_tags(videos: Path, tmp_path: Path) -> None:
    src = videos / "car-detection.mp4"  # H.264 and AAC, both tagged English
    with Upscaler(scale=2, device="cpu") as up:
        upscale_video(src, tmp_path / "car.mp4", up, codec="h265", max_frames=3)
        with av.open(str(tmp_path / "car.mp4")) as c:
            assert c.streams.video[0].codec_context.codec_tag == "hvc1"  # hev1 is refused by Apple's players
            assert [s.metadata.get("language") for s in c.streams] == ["eng", "eng"]
        upscale_video(src, tmp_path / "car.avi", up, max_frames=3)
        assert _streams(tmp_path / "car.avi")["rate"] == 12.5  # AVI counts frames in its own time base
        with pytest.raises(InputError, match=r"\.webm files cannot hold the aac audio stream"):
            upscale_video(src, tmp_path / "car.webm", up, max_frames=3)
        with pytest.raises(InputError, match="the h261 encoder cannot start for 1536x864"):  # 176x144 and 352x288 only
            upscale_video(src, tmp_path / "car-h261.avi", up, codec="h261", max_frames=3)
        upscale_video(src, tmp_path / "car.mkv", up, codec="mjpeg", max_frames=3)  # JPEG is full range: yuvj420p
        with av.open(str(tmp_path / "car.mkv")) as c:
            mjpeg = c.streams.video[0].codec_context
            assert (mjpeg.name, mjpeg.pix_fmt, mjpeg.color_range) == ("mjpeg", "yuvj420p", 2)
            first = next(c.decode(video=0)).to_ndarray(format="rgb24")
        with av.open(str(tmp_path / "car.mp4")) as c:
            assert abs(float(first.mean()) - float(next(c.decode(video=0)).to_ndarray(format="rgb24").mean())) < 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["car.avi", "car.mkv", "car.mp4"]


def test_a_variable_frame_rate_input_goes_into_avi_frame_by_frame(tmp_path: Path) -> None:
    """Bursts of frames 5 ms apart in a 25 fps Matroska file: AVI has one frame per 1/25 s
    tick, so they are written one per tick (the muxer refused two on one tick)."""
    from fractions import Fraction

    src = tmp_path / "bursty.mkv"
    with av.open(str(src), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.time_base = s.codec_context.time_base = Fraction(1, 1000)
        for i, pts in enumerate([0, 5, 10, 80, 85, 90, 200, 205]):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 * i, np.uint8), format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    with Upscaler(scale=2, device="cpu") as up:
        report = upscale_video(src, tmp_path / "bursty.avi", up)
    assert report.frames == 8
    info = _streams(tmp_path / "bursty.avi")
    assert (info["frames"], info["rate"]) == (8, 25)


def test_a_longer_audio_track_is_not_taken_for_missing_frames(tmp_path: Path) -> None:
    """The file lasts as long as its audio; the video stream's own end is what counts."""
    src = tmp_path / "long_audio.mkv"
    with av.open(str(src), "w") as c:
        video = c.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = c.add_stream("pcm_s16le", rate=8000, layout="mono")
        for _ in range(10):  # 0.4 s of video
            for p in video.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")):
                c.mux(p)
        for k in range(20):  # 2 s of audio
            samples = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
            samples.sample_rate, samples.pts = 8000, k * 800
            for p in audio.encode(samples):
                c.mux(p)
        for stream in (video, audio):
            for p in stream.encode(None):
                c.mux(p)
    with Upscaler(scale=2, device="cpu") as up:
        report = upscale_video(src, tmp_path / "out.mkv", up)
    assert (report.frames, report.missing_frames, report.copied_streams) == (10, 0, 1)


def _times(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        return [float(f.pts * f.time_base) for f in c.decode(video=0)]


def test_a_variable_rate_clip_keeps_every_frame_time(tmp_path: Path) -> None:
    """A phone-style clip: 30 fps in a 1/90000 time base with one frame dropped (average
    rate 29.4), and a Matroska clip that does not start on its rate's grid. Each frame keeps
    its time; the encoder once rounded them to 1 / average rate (the MP4 muxer then failed on
    two frames at one time, and the late start moved against the audio)."""
    from fractions import Fraction

    for name, base, times in (("phone.mp4", Fraction(1, 90000), [i * 3000 for i in range(12) if i != 5]),
                              ("late.mkv", Fraction(1, 1000), [21 + 40 * i for i in range(6)])):  # fmt: skip
        src = tmp_path / name
        with av.open(str(src), "w") as c:
            s = c.add_stream("libx264", rate=25)
            s.width, s.height, s.pix_fmt = 48, 32, "yuv420p"
            s.time_base = s.codec_context.time_base = base
            for i, pts in enumerate(times):
                frame = av.VideoFrame.from_ndarray(np.full((32, 48, 3), 20 * i, np.uint8), format="rgb24")
                frame.pts, frame.time_base = pts, base
                for p in s.encode(frame):
                    c.mux(p)
            for p in s.encode(None):
                c.mux(p)
        for out in (tmp_path / f"{name}_x2.mp4", tmp_path / f"{name}_x2.mkv"):
            with Upscaler(scale=2, device="cpu") as up:
                assert upscale_video(src, out, up).frames == len(times)
            assert _times(out) == pytest.approx(_times(src), abs=1e-3), out.name


def test_an_avi_with_b_frames_and_an_anamorphic_clip_keep_order_and_shape(tmp_path: Path) -> None:
    """H.264 in AVI (as srsdk itself writes it) has B-frames and no presentation times; a
    4:3-pixel clip (DVD, HDV) shows wider than it is stored."""
    from fractions import Fraction

    frames = [np.full((32, 48, 3), 20 * i, np.uint8) for i in range(10)]
    avi = tmp_path / "b.avi"
    with av.open(str(avi), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 48, 32, "yuv420p"
        s.codec_context.sample_aspect_ratio = Fraction(4, 3)
        for frame in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    with Upscaler(scale=2, device="cpu") as up:
        assert upscale_video(avi, tmp_path / "b.mkv", up).frames == 10
    assert _times(tmp_path / "b.mkv") == pytest.approx([i / 25 for i in range(10)], abs=1e-3)
    with av.open(str(tmp_path / "b.mkv")) as c:
        assert c.streams.video[0].sample_aspect_ratio == Fraction(4, 3)
        levels = [int(f.to_ndarray(format="rgb24").mean()) for f in c.decode(video=0)]
    assert levels == sorted(levels)  # in their order: each frame is brighter than the one before


def test_raw_mode_with_stdin_or_stdout_closed_is_one_line() -> None:
    for redirect, name in (("<&-", "stdin"), (">&-", "stdout")):
        done = subprocess.run(["bash", "-c", f"{sys.executable} -m srsdk upscale - - --raw 8x8 {redirect}"],
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        assert done.returncode == 1
        assert done.stderr == f"srsdk: error: raw mode reads frames from stdin and writes them to stdout, and {name} is closed\n"


@pytest.mark.shared
def test_frames_cuts_the_audio_at_the_last_frame_whatever_the_decoders_threads(
    videos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The decoder runs as many packets behind the demuxer as it has threads (16 on the GPU
    machines): audio demuxed meanwhile was copied before the last kept frame's time was known."""
    from srsdk.io import video

    opened = video._open_input

    def sixteen_threads(src: Path) -> object:
        source = opened(src)
        source.streams.video[0].thread_count = 16  # as FFmpeg picks on a 16-core machine
        return source

    monkeypatch.setattr(video, "_open_input", sixteen_threads)
    with Upscaler(scale=2, device="cpu") as up:
        assert upscale_video(videos / "car-detection.mp4", tmp_path / "five.mp4", up, max_frames=5).frames == 5
    ends = {}
    for kind in ("video", "audio"):
        with av.open(str(tmp_path / "five.mp4")) as c:
            stream = getattr(c.streams, kind)[0]
            ends[kind] = max(p.pts + p.duration for p in c.demux(stream) if p.size) * stream.time_base
    assert abs(float(ends["audio"] - ends["video"])) < 0.03  # within one AAC packet (21 ms)


def test_crf_for_an_encoder_that_would_ignore_it_is_refused(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    src = _write(tmp_path / "in.mp4", [np.zeros((16, 16, 3), np.uint8)])
    assert main(["upscale", str(src), str(tmp_path / "out.mkv"), "--codec", "mjpeg", "--crf", "2"]) == 1
    assert capsys.readouterr().err == "srsdk: error: --crf is for h264, h265 and vp9; mjpeg would ignore it (it keeps its own defaults)\n"


def _clip(path: Path, times_ms: list[float], *, audio: str | None = None, audio_from_ms: int = 0,
          cover_only: bool = False, base: int = 1000) -> Path:  # fmt: skip
    """A 64x48 H.264 clip with frames at ``times_ms`` (in a 1/``base`` time base), and one second of
    stereo ``audio`` (an encoder's name) from ``audio_from_ms``; or, ``cover_only``, audio
    and a cover picture, as a music file holds them."""
    from fractions import Fraction

    with av.open(str(path), "w") as c:
        s = c.add_stream("mjpeg" if cover_only else "libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuvj420p" if cover_only else "yuv420p"
        if cover_only:
            s.disposition = av.stream.Disposition.attached_pic
        else:
            s.time_base = s.codec_context.time_base = Fraction(1, base)
        a = c.add_stream(audio, rate=48000, layout="stereo") if audio is not None else None
        for i, pts in enumerate(times_ms):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 * i, np.uint8), format="rgb24")
            frame.pts, frame.time_base = round(pts * base / 1000), Fraction(1, base)
            for p in s.encode(frame):
                c.mux(p)
        for k in range(48000 // 960 if a is not None else 0):
            samples = av.AudioFrame.from_ndarray(np.zeros((1, 2 * 960), np.int16), format="s16", layout="stereo")
            samples.sample_rate, samples.pts, samples.time_base = 48000, 48 * audio_from_ms + k * 960, Fraction(1, 48000)
            for p in a.encode(samples):  # type: ignore[union-attr]
                c.mux(p)
        for stream in (s, a) if a is not None else (s,):
            for p in stream.encode(None):
                c.mux(p)
    return path


def test_what_a_container_refuses_is_one_line_with_ffmpegs_reason_before_any_work(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Refusals FFmpeg makes only at the header or trailer (a crash as an internal error, some
    after every frame was upscaled) come before the network loads, with FFmpeg's reason."""
    from srsdk.io.video import check_video_output

    opus = _clip(tmp_path / "opus.mkv", [0, 40], audio="libopus")
    pcm = _clip(tmp_path / "pcm.avi", [0, 40], audio="pcm_s16le")  # from AVI: two channels, of no layout
    for src, dst, reason in ((opus, "out.mov", r"\[mov\] opus only supported in MP4"),
                             (pcm, "out.mp4", r"\[mp4\] unsupported channel layout")):  # fmt: skip
        with pytest.raises(InputError, match=rf"files cannot hold these streams \({reason}.*\); use \.mkv"):
            check_video_output(src, tmp_path / dst, None, 18, 2)
        assert main(["upscale", str(src), str(tmp_path / dst), "--weights", str(tmp_path / "never-read.safetensors")]) == 1
        assert "cannot hold these streams" in capsys.readouterr().err  # not the missing weights: checked first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["opus.mkv", "pcm.avi"]


def test_frame_times_an_encoder_or_muxer_would_refuse_are_mended(tmp_path: Path) -> None:
    """Two frames on one time (MP4 refused the second in the review's clip); a phone-style
    clip, 1/90000 time base and an average rate of 900000/31211, with mpeg4 (which takes
    time base denominators up to 65535 only) and mpeg2video (standard frame rates only);
    times that go back (two files joined end to end) are refused, not squashed."""
    twice = _clip(tmp_path / "twice.mkv", [0, 40, 80, 80, 120])
    phone = _clip(tmp_path / "phone.mp4", [0.0, 33.438, 69.507, 100.739, 136.797, 169.035, 201.942, 237.275,
                                           270.097, 303.761], base=90000)  # fmt: skip
    part = _clip(tmp_path / "part.ts", [0, 40, 80, 120])
    joined = tmp_path / "joined.ts"
    joined.write_bytes(part.read_bytes() * 2)  # cat part.ts part.ts
    with av.open(str(phone)) as c:
        assert c.streams.video[0].average_rate == Fraction(900000, 31211)
    with Upscaler(scale=2, device="cpu") as up:
        assert upscale_video(twice, tmp_path / "twice.mp4", up).frames == 5
        assert _times(tmp_path / "twice.mp4") == pytest.approx([0, 0.04, 0.08, 0.081, 0.12], abs=1e-3)
        for codec, tick in (("mpeg4", 31211 / 900000), ("mpeg2video", 1 / 30)):
            assert upscale_video(phone, tmp_path / f"phone-{codec}.mkv", up, codec=codec).frames == 10
            # In the encoder's own time base: each time within half a tick, one frame a tick
            assert _times(tmp_path / f"phone-{codec}.mkv") == pytest.approx(_times(phone), abs=tick / 2 + 1e-3)
        with pytest.raises(InputError, match=r"frame times go back from 0\.200 s to 0\.080 s at frame 5"):
            upscale_video(joined, tmp_path / "joined.mp4", up)
    assert not (tmp_path / "joined.mp4").exists()


def _first_video_time(path: Path) -> float:
    """When an AVI's first frame is shown (it places frames by decode time, so B-frames make
    the first one tick early)."""
    with av.open(str(path)) as c:
        return float(min(p.pts * p.time_base for p in c.demux(video=0) if p.size and p.pts is not None))


def test_avi_keeps_the_video_where_it_starts_against_the_audio(tmp_path: Path) -> None:
    """AVI counts frames and places copied audio from 0: a video 1 s after its audio starts
    1 s in (it started at 0, 1 s early), and one that starts with its audio 1.4 s into the
    input (as every MPEG-TS file does) starts at 0."""
    late = _clip(tmp_path / "late.mkv", [1000 + 40 * i for i in range(5)], audio="mp2")
    both = _clip(tmp_path / "both.mkv", [1400 + 40 * i for i in range(5)], audio="mp2", audio_from_ms=1400)
    with Upscaler(scale=2, device="cpu") as up:
        for src in (late, both):
            assert upscale_video(src, tmp_path / f"{src.stem}.avi", up).frames == 5
    assert _first_video_time(tmp_path / "late.avi") == pytest.approx(1.0, abs=0.041)
    assert _first_video_time(tmp_path / "both.avi") == pytest.approx(0.0, abs=0.041)
    for name in ("late.avi", "both.avi"):
        with av.open(str(tmp_path / name)) as c:
            assert float(next(c.decode(audio=0)).time) == pytest.approx(0, abs=0.03)


def test_a_music_file_whose_only_picture_is_its_cover_is_not_a_video(tmp_path: Path) -> None:
    cover = _clip(tmp_path / "podcast.mp4", [0], audio="aac", cover_only=True)
    with Upscaler(scale=2, device="cpu") as up, pytest.raises(InputError, match=r"has no video stream \(only cover art\)"):
        upscale_video(cover, tmp_path / "out.mp4", up)  # was upscaled as a one-frame video at 90,000 fps


@pytest.mark.parametrize("matrix", ["itu601", "itu709"])
def test_full_range_frames_for_mjpeg_keep_their_colour(tmp_path: Path, matrix: str) -> None:
    """swscale's full-range RGB to YUV truncates the chroma (half a level low): MJPEG output
    came out about one level off in each colour (-0.96 / +0.91 / -1.49 on a real clip)."""
    import io

    from srsdk.io.video_colour import BT601, BT709, from_rgb, rgb_of

    photo = np.asarray(Image.open(SHIPPED_PHOTO).convert("RGB"))
    photo = photo[: photo.shape[0] // 2 * 2, : photo.shape[1] // 2 * 2]
    code = {"itu601": BT601, "itu709": BT709}[matrix]
    with av.open(io.BytesIO(), "w", format="matroska") as c:
        out = c.add_stream("mjpeg", rate=25)
        out.pix_fmt, out.codec_context.color_range = "yuvj420p", 2
        frame = from_rgb(photo, out, code)
    assert frame.format.name == "yuvj420p"
    shift = rgb_of(frame, code).astype(float).mean(axis=(0, 1)) - photo.mean(axis=(0, 1))
    assert np.abs(shift).max() < 0.2, shift
