"""Pose-estimation baselines run in the same harness as the model: COLMAP (pycolmap incremental SfM) and OpenCV
essential-matrix chaining. Each returns camera-to-world [F, 4, 4] (OpenCV) or None when it cannot pose every frame."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..cameras import invert_rigid, rt_to_matrix
from ..io.video import to_uint8


def colmap_poses(
    frames: Tensor,
    K: Tensor | None = None,
    extract_threads: int = 2,
    match_threads: int = 1,
    mapper_threads: int = 1,
) -> Tensor | None:
    """Incremental SfM on the frames [F, 3, H, W] in [-1, 1]; a known K (pixels) is fixed, else refined. Feature
    extraction repeated from run to run on two threads (the eval's). Matching and mapping default to one thread
    each, the eval's settings, as they did not repeat on more: matching on two threads gave other matches in about 1
    run in 800 while the process was paused at random, as a CPU quota pauses it (CI once saw two runs' poses differ
    on two), and the mapper's seeded random choices depend on which thread takes which task (3 of the eval's 20
    SynthRooms clips gave other poses across 3 runs). On the eval's 50 dense clips one matching thread cost 6% more
    time than two (the same poses), and one mapper thread 17% more than two."""
    with tempfile.TemporaryDirectory(prefix="raxels_colmap_") as d:
        colmap_database(frames, K, Path(d), extract_threads, match_threads)
        return colmap_map(Path(d), frames.shape[0], K, mapper_threads)


def colmap_database(
    frames: Tensor, K: Tensor | None, folder: Path, extract_threads: int = 2, match_threads: int = 1
) -> None:
    """COLMAP's first stage: the frames as images/ and, in db.db, their camera, SIFT features and verified matches."""
    import pycolmap

    folder.mkdir(parents=True, exist_ok=True)
    db, images = _layout(folder)
    _write_images(frames, images)
    _register_images(db, frames.shape[0], frames.shape[-2:], K)
    _extract_features(db, images, extract_threads)
    # Seeded, as the mapper is: geometric verification's RANSAC is otherwise seeded from the clock, so a clip near
    # COLMAP's limits could register on one run and not the next.
    verify = pycolmap.TwoViewGeometryOptions()
    verify.ransac.random_seed = 0
    match = pycolmap.FeatureMatchingOptions()
    match.num_threads = match_threads
    pycolmap.match_exhaustive(db, matching_options=match, verification_options=verify, device=pycolmap.Device.cpu)


def colmap_map(folder: Path, count: int, K: Tensor | None, mapper_threads: int = 1) -> Tensor | None:
    """COLMAP's second stage, on what colmap_database wrote to folder: camera-to-world [count, 4, 4] of its largest
    reconstruction, or None unless that posed all `count` images."""
    import pycolmap

    opts = pycolmap.IncrementalPipelineOptions()
    opts.num_threads = mapper_threads
    opts.random_seed = 0
    if K is not None:
        opts.ba_refine_focal_length = False
        opts.ba_refine_principal_point = False
    with tempfile.TemporaryDirectory(prefix="sparse_", dir=folder) as out:
        recs = pycolmap.incremental_mapping(*_layout(folder), out, opts)
    if not recs:
        return None
    rec = max(recs.values(), key=lambda r: r.num_reg_images())
    if rec.num_reg_images() < count:
        return None
    w2c = torch.zeros(count, 4, 4, dtype=torch.float64)
    for img in rec.images.values():
        if not img.has_pose:
            return None
        w2c[int(Path(img.name).stem), :3] = torch.from_numpy(np.asarray(img.cam_from_world().matrix()))
    w2c[:, 3, 3] = 1.0
    return invert_rigid(w2c)


def _layout(folder: Path) -> tuple[Path, Path]:
    """Where colmap_database puts the database and the images, and colmap_map finds them."""
    return folder / "db.db", folder / "images"


def _image_name(i: int) -> str:
    return f"{i:04d}.png"


def _write_images(frames: Tensor, folder: Path) -> None:
    """The frames [F, 3, H, W] in [-1, 1] as PNGs named by _image_name, for COLMAP to read."""
    import cv2

    folder.mkdir()
    for i, img in enumerate(to_uint8(frames)):
        cv2.imwrite(str(folder / _image_name(i)), img[..., ::-1])


def _register_images(db_path: Path, count: int, size, K: Tensor | None) -> None:
    """Write the camera and the images (with their rig and frames, as COLMAP's reader would) before extraction, so
    image i gets database id i + 1. Left to the extractor, images get their ids in the order its threads finish, and
    the mapper's choices follow the ids: the same frames gave different reconstructions, or none, from run to run."""
    import pycolmap

    H, W = (int(v) for v in size)
    if K is None:  # COLMAP's own guess for an unknown focal length, refined by the mapper
        camera = pycolmap.Camera.create_from_model_name(1, "SIMPLE_PINHOLE", 1.2 * max(W, H), W, H)
    else:
        params = [float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])]
        camera = pycolmap.Camera(model="PINHOLE", width=W, height=H, params=params)
        camera.has_prior_focal_length = True
    db = pycolmap.Database.open(db_path)
    try:
        camera.camera_id = db.write_camera(camera)
        rig = pycolmap.Rig()
        rig.add_ref_sensor(camera.sensor_id)
        rig_id = db.write_rig(rig)
        for i in range(count):
            image = pycolmap.Image(name=_image_name(i), camera_id=camera.camera_id)
            image.image_id = db.write_image(image)
            frame = pycolmap.Frame()
            frame.rig_id = rig_id
            frame.add_data_id(image.data_id)
            db.write_frame(frame)
    finally:
        db.close()


def _extract_features(db_path: Path, image_dir: Path, threads: int) -> None:
    """SIFT on the CPU into the database, for the images `_register_images` wrote there."""
    import pycolmap

    extract = pycolmap.FeatureExtractionOptions()
    extract.num_threads = threads
    extract.use_gpu = False
    pycolmap.extract_features(
        db_path,
        image_dir,
        camera_mode=pycolmap.CameraMode.SINGLE,
        extraction_options=extract,
        device=pycolmap.Device.cpu,
    )


def _chain(frames: Tensor, K: Tensor, correspondences) -> Tensor | None:
    """Chain relative poses of consecutive frames from point correspondences and the essential matrix (unit step
    length: the scale of each step is unknown to two-view geometry). correspondences(gray_i, gray_j) -> (p1, p2)
    pixel arrays [M, 2] or None."""
    import cv2

    imgs = [cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in to_uint8(frames)]
    Kn = K.double().numpy()
    c2w = [torch.eye(4, dtype=torch.float64)]
    for i in range(len(imgs) - 1):
        pts = correspondences(imgs[i], imgs[i + 1])
        if pts is None or len(pts[0]) < 8:
            return None
        p1, p2 = pts
        E, inl = cv2.findEssentialMat(p1, p2, Kn, method=cv2.RANSAC, prob=0.999, threshold=1.0)
        if E is None or E.shape != (3, 3):
            return None
        _, R, t, _ = cv2.recoverPose(E, p1, p2, Kn, mask=inl)
        # recoverPose gives x2 = R x1 + t (camera i -> camera i+1): the pose of i+1 in i's frame is its inverse.
        rel = invert_rigid(rt_to_matrix(torch.from_numpy(R), torch.from_numpy(t[:, 0])))
        c2w.append(c2w[-1] @ rel)
    return torch.stack(c2w)


def opencv_chain_poses(frames: Tensor, K: Tensor) -> Tensor | None:
    """Essential-matrix chaining on SIFT matches (Lowe ratio 0.8)."""
    import cv2

    sift = cv2.SIFT_create()
    matcher = cv2.BFMatcher(cv2.NORM_L2)

    def sift_matches(a, b):
        (k1, d1), (k2, d2) = sift.detectAndCompute(a, None), sift.detectAndCompute(b, None)
        if d1 is None or d2 is None or len(k1) < 8 or len(k2) < 8:
            return None
        pairs = (p for p in matcher.knnMatch(d1, d2, k=2) if len(p) == 2)
        good = [m for m, n in pairs if m.distance < 0.8 * n.distance]
        p1 = np.float64([k1[m.queryIdx].pt for m in good]).reshape(-1, 2)
        p2 = np.float64([k2[m.trainIdx].pt for m in good]).reshape(-1, 2)
        return p1, p2

    return _chain(frames, K, sift_matches)


def opencv_flow_poses(frames: Tensor, K: Tensor, stride: int = 4) -> Tensor | None:
    """Essential-matrix chaining on dense Farneback optical flow sampled every `stride` pixels. Unlike SIFT it
    finds correspondences on small, smooth frames (32 x 32 generated video upscaled), so it is the independent
    estimator of the camera-control error."""
    import cv2

    def flow_matches(a, b):
        if min(a.std(), b.std()) < 1.0:  # featureless: zero flow would fit any rotation
            return None
        H, W = a.shape
        ys, xs = np.mgrid[stride // 2 : H : stride, stride // 2 : W : stride]
        flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        p1 = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
        return p1, p1 + flow[ys.ravel(), xs.ravel()].astype(np.float64)

    return _chain(frames, K, flow_matches)
