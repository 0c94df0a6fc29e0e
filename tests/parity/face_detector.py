"""Reference for the face detector (crates/m3dfel/src/face/detector.rs), in numpy, written
from face-api.js's TypeScript sources (tinyFaceDetector/, tinyYolov2/, ops/), not from the
Rust code: TinyFaceDetector on the weights in crates/m3dfel/assets/tiny-face-detector/.

write_fixtures(out) writes, for pictures of both orientations and two input sizes, the image
(raw RGB bytes), the network's raw output and the detections after the score threshold and
non-maximum suppression, to out/face/. The pictures: a drawn face (scores 0.08 to 0.35, kept
at a threshold of 0.05, none at 0.5) and a real one, a photograph placed at several sizes, twice in one
picture (kept at m3dfel's production threshold, 0.5; in the tall picture NMS drops a box).
"""
import json
import math
import os
import shutil

import numpy as np

MEAN_RGB = np.array([117.001, 114.697, 97.404], dtype=np.float32)
ANCHORS = [(1.603231, 2.094468), (6.041143, 7.080126), (2.882459, 3.518061),
           (4.266906, 5.178857), (9.041765, 10.66308)]
IOU_THRESHOLD = 0.4


# --------------------------------------------------------------------------- weights
def load_weights(model_dir, name="tiny_face_detector_model"):
    manifest = json.load(open(os.path.join(model_dir, name + "-weights_manifest.json")))
    weights = {}
    total_consumed = total_size = 0
    for group in manifest:
        # all paths of a group are concatenated into one buffer (tf.io.loadWeights)
        buf = b"".join(open(os.path.join(model_dir, p), "rb").read() for p in group["paths"])
        total_size += len(buf)
        off = 0
        for w in group["weights"]:
            n = math.prod(w["shape"])
            q = w.get("quantization")
            if q is None:
                assert w["dtype"] == "float32"
                arr = np.frombuffer(buf, dtype="<f4", count=n, offset=off).copy()
                off += 4 * n
            else:
                assert q["dtype"] == "uint8" and w["dtype"] == "float32"
                raw = np.frombuffer(buf, dtype=np.uint8, count=n, offset=off)
                # tfjs decodeWeights: v = q * scale + min (double math, stored as float32)
                arr = (raw.astype(np.float64) * q["scale"] + q["min"]).astype(np.float32)
                off += n
            weights[w["name"]] = arr.reshape(w["shape"])
        assert off == len(buf), (off, len(buf))
        total_consumed += off
    return weights, total_consumed, total_size


# --------------------------------------------------------------------------- ops
def leaky(x):
    # tfjs: relu(x - 0.1x) + 0.1x  == max(x, 0.1x)
    a = np.float32(0.10000000149011612)
    m = x * a
    return np.maximum(x - m, 0) + m


def conv2d_valid(x, w, b):
    """x [H,W,Cin], w [kh,kw,Cin,Cout], stride 1, VALID."""
    kh, kw, cin, cout = w.shape
    H, W, _ = x.shape
    oh, ow = H - kh + 1, W - kw + 1
    out = np.zeros((oh, ow, cout), np.float32)
    for i in range(kh):
        for j in range(kw):
            out += x[i:i + oh, j:j + ow, :] @ w[i, j]
    return out + b


def separable_conv(x, dw, pw, b):
    """pad 1 (zeros) -> depthwise 3x3 valid (no bias) -> pointwise 1x1 -> + bias."""
    xp = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    H, W, C = x.shape
    d = np.zeros((H, W, C), np.float32)
    for i in range(3):
        for j in range(3):
            d += xp[i:i + H, j:j + W, :] * dw[i, j, :, 0]
    return d @ pw[0, 0] + b


def max_pool_same(x, stride):
    """2x2 window, SAME padding (TF: pad_before = floor(total/2), extra -inf at bottom/right)."""
    H, W, C = x.shape
    oh, ow = -(-H // stride), -(-W // stride)
    ph = max((oh - 1) * stride + 2 - H, 0)
    pw = max((ow - 1) * stride + 2 - W, 0)
    pt, pl = ph // 2, pw // 2
    xp = np.pad(x, ((pt, ph - pt), (pl, pw - pl), (0, 0)), constant_values=-np.inf)
    out = np.full((oh, ow, C), -np.inf, np.float32)
    for i in range(2):
        for j in range(2):
            out = np.maximum(out, xp[i:i + (oh - 1) * stride + 1:stride, j:j + (ow - 1) * stride + 1:stride, :])
    return out


def resize_bilinear_legacy(img, size):
    """tf.image.resizeBilinear(img, [size,size], alignCorners=false, halfPixelCenters=false)."""
    H, W, C = img.shape

    def axis(n_in, n_out):
        scale = n_in / n_out
        src = np.arange(n_out, dtype=np.float64) * scale
        lo = np.floor(src).astype(int)
        hi = np.minimum(np.ceil(src).astype(int), n_in - 1)
        return lo, hi, (src - lo).astype(np.float32)

    y0, y1, fy = axis(H, size)
    x0, x1, fx = axis(W, size)
    top = img[y0][:, x0] + (img[y0][:, x1] - img[y0][:, x0]) * fx[None, :, None]
    bot = img[y1][:, x0] + (img[y1][:, x1] - img[y1][:, x0]) * fx[None, :, None]
    return top + (bot - top) * fy[:, None, None]


# --------------------------------------------------------------------------- network
def preprocess(img_rgb, input_size):
    """img_rgb: [H,W,3] RGB 0..255. Pad bottom/right with 0 to square, resize, (x-mean)/255."""
    img = img_rgb.astype(np.float32)
    H, W, _ = img.shape
    S = max(H, W)
    sq = np.zeros((S, S, 3), np.float32)
    sq[:H, :W] = img
    if S != input_size:
        sq = resize_bilinear_legacy(sq, input_size)
    return (sq - MEAN_RGB) / np.float32(255.0)


def forward(x, wts):
    out = leaky(conv2d_valid(x, wts["conv0/filters"], wts["conv0/bias"]))  # 3x3 VALID (no pad!)
    shapes = [out.shape]
    for k in range(1, 6):
        out = max_pool_same(out, 2)
        out = leaky(separable_conv(out, wts[f"conv{k}/depthwise_filter"],
                                   wts[f"conv{k}/pointwise_filter"], wts[f"conv{k}/bias"]))
        shapes.append(out.shape)
    out = max_pool_same(out, 1)
    # conv6/conv7 absent in this model (filterSizes has 7 entries)
    out = conv2d_valid(out, wts["conv8/filters"], wts["conv8/bias"])  # 1x1, no activation
    shapes.append(out.shape)
    return out, shapes


def sigmoid(v):
    return 1.0 / (1.0 + math.exp(-v))


def decode(raw, img_w, img_h, input_size, score_threshold=0.5):
    """raw [G,G,25] -> list of (score, x, y, w, h) in pixels of the original image (after NMS)."""
    G = raw.shape[0]
    r = raw.reshape(G, G, 5, 5).astype(np.float64)  # [row, col, anchor, (tx,ty,tw,th,to)]
    scale = input_size / max(img_w, img_h)
    rw, rh = round(img_w * scale), round(img_h * scale)  # JS Math.round (x.5 up; fine here)
    cfx, cfy = input_size / rw, input_size / rh
    cands = []
    for row in range(G):
        for col in range(G):
            for a in range(5):
                tx, ty, tw, th, to = r[row, col, a]
                score = sigmoid(to)
                if score > score_threshold:
                    cx = (col + sigmoid(tx)) / G * cfx
                    cy = (row + sigmoid(ty)) / G * cfy
                    w = math.exp(tw) * ANCHORS[a][0] / G * cfx
                    h = math.exp(th) * ANCHORS[a][1] / G * cfy
                    cands.append((score, cx - w / 2, cy - h / 2, w, h))
    keep = nms([c[1:] for c in cands], [c[0] for c in cands], IOU_THRESHOLD)
    return [(cands[i][0], cands[i][1] * img_w, cands[i][2] * img_h,
             cands[i][3] * img_w, cands[i][4] * img_h) for i in keep]


def iou(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    return inter / (aw * ah + bw * bh - inter)


def nms(boxes, scores, thr):
    # same as face-api ops/nonMaxSuppression.ts (greedy, keep if IoU <= thr)
    order = sorted(range(len(scores)), key=lambda i: scores[i])  # stable ascending
    pick = []
    while order:
        cur = order.pop()
        pick.append(cur)
        order = [i for i in order if iou(boxes[cur], boxes[i]) <= thr]
    return pick


def synthetic_image(h, w):
    """A deterministic picture: stripes and a skin-coloured ellipse with eyes and a mouth."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([(x * 7 + y * 3) % 256, (x * 2 + y * 5 + 60) % 256, (x + y * 11 + 120) % 256], -1)
    cx, cy = w * 0.47, h * 0.46
    face = ((x - cx) / (w * 0.14)) ** 2 + ((y - cy) / (h * 0.25)) ** 2 <= 1
    img[face] = (224, 172, 140)
    for ex in (cx - w * 0.055, cx + w * 0.055):
        img[((x - ex) / (w * 0.022)) ** 2 + ((y - cy + h * 0.06) / (h * 0.019)) ** 2 <= 1] = (40, 30, 30)
    img[(abs(x - cx) < w * 0.047) & (abs(y - cy - h * 0.125) < h * 0.0125)] = (150, 60, 60)
    return img.astype(np.uint8)


PHOTO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "astronaut-face.jpg")
PRODUCTION_THRESHOLD = 0.5  # m3dfel::face::MIN_SCORE


def photo_scenes():
    """Pictures with the real face of PHOTO (Eileen Collins, NASA, public domain; cropped from
    scikit-image's astronaut.png) placed on a plain background: two faces of different sizes,
    one mirrored, in a wide picture; one large face in a tall picture; one face too small to find."""
    from PIL import Image
    photo = Image.open(PHOTO).convert("RGB")

    def scene(w, h, faces):
        canvas = Image.new("RGB", (w, h), (90, 100, 110))
        for size, x, y, mirror in faces:
            face = photo.resize((size, size), Image.BICUBIC)
            canvas.paste(face.transpose(Image.FLIP_LEFT_RIGHT) if mirror else face, (x, y))
        return np.asarray(canvas)

    return {"two-faces": scene(640, 480, [(200, 30, 120, False), (280, 330, 60, True)]),
            "tall": scene(450, 600, [(300, 80, 150, False)]),
            "small": scene(640, 480, [(110, 400, 300, False)])}


def write_fixtures(out):
    model_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../crates/m3dfel/assets/tiny-face-detector")
    weights, consumed, size = load_weights(model_dir)
    assert consumed == size
    out = os.path.join(out, "face")
    shutil.rmtree(out, ignore_errors=True)  # no case left over from an earlier recipe
    os.makedirs(out, exist_ok=True)
    for h, w in ((480, 640), (600, 450)):
        image = synthetic_image(h, w)
        image.tofile(os.path.join(out, f"image-{w}x{h}.rgb"))
        for input_size in (320, 416):
            raw, _ = forward(preprocess(image, input_size), weights)
            # The drawn face scores under the production threshold: nothing may be found there.
            for threshold in (0.05, PRODUCTION_THRESHOLD):
                detections = decode(raw, w, h, input_size, score_threshold=threshold)
                assert threshold != PRODUCTION_THRESHOLD or not detections
                case = {"image": f"image-{w}x{h}.rgb", "width": w, "height": h, "input_size": input_size,
                        "score_threshold": threshold, "raw": raw.flatten().tolist(),
                        "detections": [list(d) for d in detections]}
                with open(os.path.join(out, f"case-{w}x{h}-{input_size}-{threshold}.json"), "w") as f:
                    json.dump(case, f)
    found = {}
    for name, image in photo_scenes().items():
        h, w, _ = image.shape
        image.tofile(os.path.join(out, f"photo-{name}.rgb"))
        for input_size in (320, 416):
            raw, _ = forward(preprocess(image, input_size), weights)
            detections = decode(raw, w, h, input_size, score_threshold=PRODUCTION_THRESHOLD)
            found[name, input_size] = len(detections)
            case = {"image": f"photo-{name}.rgb", "width": w, "height": h, "input_size": input_size,
                    "score_threshold": PRODUCTION_THRESHOLD, "raw": raw.flatten().tolist(),
                    "detections": [list(d) for d in detections]}
            with open(os.path.join(out, f"case-photo-{name}-{input_size}.json"), "w") as f:
                json.dump(case, f)
    # What the Rust test relies on to see the threshold and NMS at work.
    assert found == {("two-faces", 320): 2, ("two-faces", 416): 2, ("tall", 320): 1, ("tall", 416): 1,
                     ("small", 320): 0, ("small", 416): 0}, found
