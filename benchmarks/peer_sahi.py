"""The detection benchmark's peer: SAHI sliced inference with YOLOv8n over one image, timed.

Run by ``bench_detect.py --peer-python PYTHON`` with the python of a separate environment that has
``sahi`` and ``ultralytics`` (they pull torch; never install them into the project's environment):

    python3 -m venv /tmp/peer-venv
    /tmp/peer-venv/bin/pip install torch==2.14.1 torchvision==0.29.1 sahi ultralytics

    /tmp/peer-venv/bin/python benchmarks/peer_sahi.py IMAGE.png GSD_M THREADS REPEAT

YOLOv8n is built from its YAML with random weights (nothing is downloaded): enough to time it. Its
slices are 640 pixels overlapping by 20 %, on the image resampled to 0.3 m like sitewatch's model
input, so both run the same pixels. Prints one JSON line: best seconds, CPU seconds, boxes.
"""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    image_path, gsd, threads, repeat = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    import torch
    import ultralytics.utils
    import ultralytics.utils.torch_utils
    from PIL import Image
    from sahi import AutoDetectionModel
    from sahi.predict import get_sliced_prediction
    from ultralytics import YOLO

    # ultralytics sets torch to cpu_count - 1 threads when imported, and again whenever it selects a
    # device (ultralytics.utils.torch_utils.select_device): give it the same threads as sitewatch.
    ultralytics.utils.NUM_THREADS = ultralytics.utils.torch_utils.NUM_THREADS = threads
    torch.set_num_threads(threads)
    model = AutoDetectionModel.from_pretrained(model_type="ultralytics", model=YOLO("yolov8n.yaml"),
                                               confidence_threshold=0.25, device="cpu")
    with Image.open(image_path) as opened:
        source = opened.convert("RGB")
    times, cpu_times, boxes = [], [], 0
    for _ in range(repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        scale = gsd / 0.3  # to the model's 0.3 m, as sitewatch's tiles are resampled
        image = source.resize((round(source.width * scale), round(source.height * scale)),
                              Image.Resampling.BILINEAR)
        result = get_sliced_prediction(image, model, slice_height=640, slice_width=640,
                                       overlap_height_ratio=0.2, overlap_width_ratio=0.2, verbose=0)
        times.append(time.perf_counter() - started)
        cpu_times.append(time.process_time() - cpu_started)
        boxes = len(result.object_prediction_list)
    print(json.dumps({"seconds": round(min(times), 3), "cpu_seconds": round(min(cpu_times), 3),
                      "detections": boxes, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
