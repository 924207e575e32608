"""Tests for gan_anomaly_ros.ros.image_conversion (our cv_bridge replacement)."""

import array
from types import SimpleNamespace

import numpy as np
import pytest

from gan_anomaly_ros.ros.image_conversion import (
    SUPPORTED_ENCODINGS,
    ImageEncodingError,
    encoding_info,
    image_to_depth_m,
    image_to_numpy,
    image_to_rgb,
    numpy_to_image,
)

try:
    import sensor_msgs.msg  # noqa: F401
    HAVE_SENSOR_MSGS = True
except ImportError:  # the pure-numpy tests below still run
    HAVE_SENSOR_MSGS = False
needs_sensor_msgs = pytest.mark.skipif(not HAVE_SENSOR_MSGS,
                                       reason="sensor_msgs (ROS 2) not importable")


def fake_msg(pixels, encoding, padding=0, bigendian=False, as_bytes=False):
    """An Image-like object built by hand (no ROS), rows padded with ``padding`` bytes."""
    pixels = np.ascontiguousarray(pixels)
    if pixels.dtype.itemsize > 1:
        pixels = pixels.astype(pixels.dtype.newbyteorder(">" if bigendian else "<"))
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, -1).view(np.uint8)
    step = rows.shape[1] + padding
    raw = np.full((height, step), 0xAB, np.uint8)
    raw[:, :rows.shape[1]] = rows
    data = raw.tobytes() if as_bytes else array.array("B", raw.tobytes())
    return SimpleNamespace(height=height, width=width, encoding=encoding, step=step,
                           is_bigendian=int(bigendian), data=data)


def sample(encoding, height=5, width=6, seed=0):
    dtype, channels = encoding_info(encoding)
    rng = np.random.default_rng(seed)
    shape = (height, width) + ((channels,) if channels > 1 else ())
    if dtype.kind == "f":
        return rng.normal(0, 1e3, shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)


def data_view(msg):
    return np.frombuffer(msg.data, np.uint8)


# --- round trips -------------------------------------------------------------------------

@needs_sensor_msgs
@pytest.mark.parametrize("encoding", SUPPORTED_ENCODINGS)
def test_round_trip_every_encoding_zero_copy(encoding):
    pixels = sample(encoding)
    msg = numpy_to_image(pixels, encoding)
    assert (msg.height, msg.width, msg.encoding) == (5, 6, encoding)
    assert msg.step == 6 * pixels.dtype.itemsize * encoding_info(encoding)[1]
    assert len(msg.data) == msg.height * msg.step
    out = image_to_numpy(msg)
    assert out.dtype == pixels.dtype and out.shape == pixels.shape
    np.testing.assert_array_equal(out, pixels)
    assert np.shares_memory(out, data_view(msg))  # a view of msg.data, no copy


@pytest.mark.parametrize("encoding", SUPPORTED_ENCODINGS)
def test_fake_message_every_encoding_without_ros(encoding):
    pixels = sample(encoding, seed=1)
    msg = fake_msg(pixels, encoding)
    out = image_to_numpy(msg)
    np.testing.assert_array_equal(out, pixels)
    assert np.shares_memory(out, data_view(msg))


@needs_sensor_msgs
def test_numpy_to_image_fields_header_and_lowercase_type():
    from std_msgs.msg import Header
    header = Header(frame_id="camera_color_optical_frame")
    header.stamp.sec, header.stamp.nanosec = 12, 34
    msg = numpy_to_image(np.zeros((2, 3, 3), np.uint8), "8uc3", header=header)
    assert msg.encoding == "8UC3" and msg.header.frame_id == "camera_color_optical_frame"
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (12, 34)
    assert msg.is_bigendian == 0  # meaningless for 8-bit data: always 0
    assert isinstance(msg.data, array.array) and msg.data.typecode == "B"


@needs_sensor_msgs
def test_numpy_to_image_accepts_hxwx1_and_non_contiguous():
    pixels = sample("mono16", 4, 8)
    np.testing.assert_array_equal(
        image_to_numpy(numpy_to_image(pixels[:, :, None], "mono16")), pixels)
    strided = sample("rgb8", 6, 10)[::2, ::3]
    np.testing.assert_array_equal(image_to_numpy(numpy_to_image(strided, "rgb8")), strided)


@needs_sensor_msgs
def test_numpy_to_image_refuses_wrong_dtype_and_channels():
    with pytest.raises(ImageEncodingError, match="32FC1.*float32.*float64"):
        numpy_to_image(np.zeros((2, 2)), "32FC1")
    with pytest.raises(ImageEncodingError, match="3 channel"):
        numpy_to_image(np.zeros((2, 2, 4), np.uint8), "rgb8")
    with pytest.raises(ImageEncodingError, match="1 channel"):
        numpy_to_image(np.zeros((2, 2, 3), np.uint16), "mono16")
    with pytest.raises(ImageEncodingError, match="'nope'"):
        numpy_to_image(np.zeros((2, 2), np.uint8), "nope")


# --- layout: padding, byte order, errors -------------------------------------------------

@pytest.mark.parametrize("encoding,padding", [("rgb8", 4), ("mono16", 3), ("32FC3", 8),
                                              ("yuv422", 2), ("64FC1", 1)])
def test_row_padding_gives_strided_view(encoding, padding):
    pixels = sample(encoding, 4, 7, seed=2)
    msg = fake_msg(pixels, encoding, padding=padding)
    assert msg.step > 7 * pixels.dtype.itemsize * encoding_info(encoding)[1]
    out = image_to_numpy(msg)
    np.testing.assert_array_equal(out, pixels)
    assert np.shares_memory(out, data_view(msg))
    assert out.strides[0] == msg.step


@pytest.mark.parametrize("as_bytes", [False, True])
def test_big_endian_data_is_swapped_to_native(as_bytes):
    pixels = sample("16SC2", 3, 4, seed=3)
    msg = fake_msg(pixels, "16SC2", padding=2, bigendian=True, as_bytes=as_bytes)
    out = image_to_numpy(msg)
    assert out.dtype == np.dtype(np.int16) and out.dtype.isnative
    np.testing.assert_array_equal(out, pixels)


@needs_sensor_msgs
def test_big_endian_array_round_trip():
    pixels = sample("32FC1", seed=4).astype(">f4")
    msg = numpy_to_image(pixels, "32FC1")
    assert msg.is_bigendian == 1
    assert bytes(msg.data) == pixels.tobytes()  # sent without swapping
    out = image_to_numpy(msg)
    assert out.dtype.isnative
    np.testing.assert_array_equal(out, pixels)


def test_bytes_data_gives_read_only_view():
    msg = fake_msg(sample("mono8"), "mono8", as_bytes=True)
    out = image_to_numpy(msg)
    assert not out.flags.writeable and np.shares_memory(out, data_view(msg))


def test_unknown_encoding_refused_with_name_and_supported_list():
    msg = fake_msg(sample("mono8"), "mono8")
    msg.encoding = "weird42"
    with pytest.raises(ImageEncodingError, match="weird42") as err:
        image_to_numpy(msg)
    assert "rgb8" in str(err.value) and "32FC1" in str(err.value)
    assert isinstance(err.value, ValueError)


def test_truncated_and_oversized_data_refused():
    msg = fake_msg(sample("rgb8"), "rgb8")
    msg.data = msg.data[:-1]
    with pytest.raises(ImageEncodingError, match=r"data length 89 != height 5 \* step 18"):
        image_to_numpy(msg)
    msg.data = array.array("B", bytes(91))
    with pytest.raises(ImageEncodingError, match="data length 91"):
        image_to_numpy(msg)


def test_step_smaller_than_row_refused():
    msg = fake_msg(sample("rgb8"), "rgb8")
    msg.step, msg.data = 17, msg.data[:85]
    with pytest.raises(ImageEncodingError, match="step 17 < width 6"):
        image_to_numpy(msg)


def test_empty_image():
    msg = SimpleNamespace(height=0, width=0, encoding="rgb8", step=0, is_bigendian=0,
                          data=array.array("B"))
    assert image_to_numpy(msg).shape == (0, 0, 3)


# --- RGB helper --------------------------------------------------------------------------

def test_bgr_family_to_rgb_order():
    rgb = sample("rgb8", seed=5)
    np.testing.assert_array_equal(image_to_rgb(fake_msg(rgb, "rgb8")), rgb)
    np.testing.assert_array_equal(image_to_rgb(fake_msg(rgb[..., ::-1], "bgr8")), rgb)
    np.testing.assert_array_equal(image_to_rgb(fake_msg(rgb[..., ::-1], "8UC3")), rgb)
    alpha = np.full(rgb.shape[:2] + (1,), 7, np.uint8)
    np.testing.assert_array_equal(
        image_to_rgb(fake_msg(np.concatenate([rgb, alpha], 2), "rgba8")), rgb)
    out = image_to_rgb(fake_msg(np.concatenate([rgb[..., ::-1], alpha], 2), "bgra8"))
    np.testing.assert_array_equal(out, rgb)
    assert out.flags.c_contiguous and out.dtype == np.uint8


def test_rgb8_is_zero_copy():
    msg = fake_msg(sample("rgb8"), "rgb8", padding=3)
    assert np.shares_memory(image_to_rgb(msg), data_view(msg))


def test_mono_to_rgb():
    mono16 = np.array([[0, 255, 256], [4095, 65280, 65535]], np.uint16)
    out = image_to_rgb(fake_msg(mono16, "mono16", bigendian=True))
    assert out.shape == (2, 3, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 0], [[0, 0, 1], [15, 255, 255]])
    assert (out == out[..., :1]).all()
    mono8 = sample("mono8", seed=6)
    for encoding in ("mono8", "8UC1"):
        out = image_to_rgb(fake_msg(mono8, encoding))
        np.testing.assert_array_equal(out, np.stack([mono8] * 3, axis=2))


# BT.601 limited range: (Y, U, V) -> RGB
YUV_COLOURS = [((16, 128, 128), (0, 0, 0)), ((235, 128, 128), (255, 255, 255)),
               ((81, 90, 240), (255, 0, 0)), ((145, 54, 34), (0, 255, 0)),
               ((41, 240, 110), (0, 0, 255)), ((126, 128, 128), (128, 128, 128))]


@pytest.mark.parametrize("encoding", ["yuv422", "uyvy", "yuv422_yuy2", "yuyv"])
def test_yuv422_known_colours(encoding):
    uyvy = encoding in ("yuv422", "uyvy")
    pairs = np.zeros((len(YUV_COLOURS), 4, 2), np.uint8)
    for row, ((y, u, v), _) in enumerate(YUV_COLOURS):
        chroma = [u, v, u, v]
        for x in range(4):
            pairs[row, x] = (chroma[x], y) if uyvy else (y, chroma[x])
    out = image_to_rgb(fake_msg(pairs, encoding, padding=4))
    assert out.shape == (len(YUV_COLOURS), 4, 3)
    for row, (_, rgb) in enumerate(YUV_COLOURS):
        assert np.abs(out[row].astype(int) - rgb).max() <= 2, (row, out[row, 0], rgb)


def test_yuv422_chroma_shared_by_pixel_pairs():
    # pixel 0/1 share (U, V) = (90, 240) -> red-ish; pixel 2/3 grey with different lumas
    uyvy = np.array([[[90, 81], [240, 81], [128, 16], [128, 235]]], np.uint8)
    out = image_to_rgb(fake_msg(uyvy, "yuv422"))
    assert out[0, 0, 0] > 250 and out[0, 1, 0] > 250
    np.testing.assert_array_equal(out[0, 2], [0, 0, 0])
    np.testing.assert_array_equal(out[0, 3], [255, 255, 255])


@pytest.mark.parametrize("encoding", ["32FC1", "16UC1", "rgb16", "bayer_rggb8", "16SC3"])
def test_rgb_refuses_other_encodings(encoding):
    msg = fake_msg(sample(encoding), encoding)
    with pytest.raises(ImageEncodingError, match=f"'{encoding}'.*supported: rgb8"):
        image_to_rgb(msg)


# --- depth helper ------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["16UC1", "mono16", "16uc1"])
def test_depth_16u_millimetres_to_metres(encoding):
    mm = np.array([[0, 1, 1000], [1234, 65535, 500]], np.uint16)
    depth = image_to_depth_m(fake_msg(mm, encoding, padding=2))
    assert depth.dtype == np.float32 and depth.shape == (2, 3)
    np.testing.assert_allclose(depth, mm / 1000.0, rtol=1e-6)
    assert depth[0, 0] == 0.0


def test_depth_32f_metres_invalid_to_zero():
    metres = np.array([[np.nan, 0.5, np.inf], [-1.0, 0.0, 2.25]], np.float32)
    msg = fake_msg(metres, "32FC1")
    depth = image_to_depth_m(msg)
    np.testing.assert_array_equal(depth, [[0, 0.5, 0], [0, 0, 2.25]])
    assert not np.shares_memory(depth, data_view(msg))
    assert np.isnan(image_to_numpy(msg)[0, 0])  # the message itself is untouched


@pytest.mark.parametrize("encoding", ["rgb8", "32FC3", "8UC1", "64FC1"])
def test_depth_refuses_other_encodings(encoding):
    with pytest.raises(ImageEncodingError, match=f"'{encoding}'.*16UC1"):
        image_to_depth_m(fake_msg(sample(encoding), encoding))
