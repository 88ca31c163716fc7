#!/usr/bin/env python3
"""Trains the cars' model from the simulated telemetry of `car-dataset` and exports it as ONNX.

The model, per telemetry message of one car, from the six features of
`examples/src/device/car/features.rs` (in that order), predicts
[range_km, anomaly_score]: the distance left until the car's charging stop at 5 %, and how
likely the message shows a fault (0 to 1). See README.md beside this file for the contract and
the figures; `python3 examples/ml/train.py --help` for the options.

Writes, into --out-dir:
  car-model.onnx         StandardScaler + MLP (ReLU), the model the edge core runs;
  car-model-linear.onnx  StandardScaler + a linear model, same contract (for swapping models);
  wrong-shape.onnx       a valid linear model over only 5 features (a model to refuse);
  metrics.json           held-out figures, row counts, feature names, the commands.

Every exported graph uses plain ONNX operators only (Sub, Div, Cast, MatMul, Add, Relu, Reshape,
Max, Min; no ai.onnx.ml domain) and is checked against scikit-learn's own predictions with
onnxruntime.
"""

import argparse
import csv
import json
import os
import shlex
import sys

import numpy as np
import onnx
import onnxruntime
import skl2onnx
import sklearn
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.metrics import (
    f1_score,
    mean_absolute_error,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

# The order of features.rs's FEATURE_NAMES; the CSV's columns of the same names are read.
FEATURE_NAMES = [
    "speed_kmh",
    "battery_pct",
    "temperature_c",
    "consumption_pct_per_km",
    "battery_drop_pct",
    "speed_change_kmh",
]
INPUT_NAME = "features"
OUTPUT_NAME = "prediction"
# The range is learnt in hundreds of km (so that both targets weigh alike in the squared loss),
# then the output layer is scaled back to km before export.
RANGE_SCALE = 100.0
# Outputs are clamped in the graph: range to [0, RANGE_MAX_KM], anomaly score to [0, 1].
RANGE_MAX_KM = 1.0e6
THRESHOLD = 0.5
OPSET = 13
DATASET_COMMAND = (
    "cargo run -p iot-examples --release --example car-dataset -- "
    "--cars 200 --hours 6 --seed 1 --fault-rate 6 --label-every 30 "
    "--output examples/ml/car-dataset.csv"
)


def load(path):
    """The CSV as (features float32 [n, 6], range_km, anomaly, car, fault kind)."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in FEATURE_NAMES + ["range_km", "anomaly", "car"] if c not in reader.fieldnames]
        if missing:
            sys.exit(f"{path}: missing columns {missing}")
        rows = list(reader)
    x = np.array([[float(r[n]) for n in FEATURE_NAMES] for r in rows], dtype=np.float32)
    range_km = np.array([float(r["range_km"]) for r in rows])
    anomaly = np.array([int(r["anomaly"]) for r in rows])
    car = np.array([int(r["car"]) for r in rows])
    fault = np.array([r.get("fault", "") for r in rows])
    return x, range_km, anomaly, car, fault


def targets(range_km, anomaly):
    return np.column_stack([range_km / RANGE_SCALE, anomaly.astype(np.float64)])


def rescale_output_layer(model):
    """Makes the MLP's first output km instead of hundreds of km (exactly: it is linear)."""
    mlp = model.steps[-1][1]
    mlp.coefs_[-1][:, 0] *= RANGE_SCALE
    mlp.intercepts_[-1][0] *= RANGE_SCALE


def predict(model, x):
    """What the exported graph computes: the pipeline's prediction, clamped."""
    y = model.predict(x).reshape(-1, 2)
    return np.column_stack([np.clip(y[:, 0], 0.0, RANGE_MAX_KM), np.clip(y[:, 1], 0.0, 1.0)])


def export(model, n_features, path, doc):
    """The pipeline as ONNX: input `features` [N, n_features] float32, output `prediction`
    [N, 2] float32, clamped; plain operators only."""
    onx = convert_sklearn(
        model,
        initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
        target_opset=OPSET,
        options={StandardScaler: {"div": "div"}},
    )
    graph = onx.graph
    raw = graph.output[0].name
    # skl2onnx declares a regressor's output as [N, 1] and reshapes to it; the MLP has 2 outputs.
    for node in graph.node:
        if node.op_type == "Reshape" and node.output[0] == raw:
            for i, init in enumerate(graph.initializer):
                if init.name == node.input[1]:
                    graph.initializer[i].CopyFrom(numpy_helper.from_array(np.array([-1, 2], dtype=np.int64), init.name))
    lower = numpy_helper.from_array(np.array([0.0, 0.0], dtype=np.float32), "clamp_lower")
    upper = numpy_helper.from_array(np.array([RANGE_MAX_KM, 1.0], dtype=np.float32), "clamp_upper")
    graph.initializer.extend([lower, upper])
    graph.node.extend(
        [
            helper.make_node("Max", [raw, "clamp_lower"], ["clamped_below"], name="ClampLower"),
            helper.make_node("Min", ["clamped_below", "clamp_upper"], [OUTPUT_NAME], name="ClampUpper"),
        ]
    )
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", 2]))
    del graph.input[:]
    graph.input.append(helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", n_features]))
    graph.name = os.path.splitext(os.path.basename(path))[0]
    onx.doc_string = doc
    onx.producer_name = "examples/ml/train.py"
    foreign = [(n.domain, n.op_type) for n in graph.node if n.domain not in ("", "ai.onnx")]
    if foreign:
        sys.exit(f"{path}: operators outside the default domain: {foreign}")
    kept = [o for o in onx.opset_import if o.domain in ("", "ai.onnx")]
    del onx.opset_import[:]
    onx.opset_import.extend(kept)
    onnx.checker.check_model(onx, full_check=True)
    with open(path, "wb") as f:
        f.write(onx.SerializeToString())
    return onx


def verify(path, model, x, n_features):
    """Runs the file with onnxruntime and compares it with scikit-learn; returns the largest
    differences (km, score)."""
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    inputs, outputs = session.get_inputs(), session.get_outputs()
    assert [i.name for i in inputs] == [INPUT_NAME], inputs
    assert [o.name for o in outputs] == [OUTPUT_NAME], outputs
    assert inputs[0].type == "tensor(float)" and inputs[0].shape == ["N", n_features], inputs[0]
    assert outputs[0].type == "tensor(float)" and outputs[0].shape == ["N", 2], outputs[0]
    got = session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
    want = predict(model, x)
    assert got.shape == want.shape == (len(x), 2), (got.shape, want.shape)
    diff = np.abs(got - want).max(axis=0)
    # float32 in the graph against float64 in scikit-learn.
    assert diff[0] < 0.05 and diff[1] < 1e-3, f"{path}: onnx and sklearn differ by {diff}"
    one = session.run([OUTPUT_NAME], {INPUT_NAME: x[:1]})[0]
    assert one.shape == (1, 2), one.shape
    return [float(d) for d in diff]


def figures(model, x, range_km, anomaly, fault):
    y = predict(model, x)
    mae = float(mean_absolute_error(range_km, y[:, 0]))
    flagged = (y[:, 1] >= THRESHOLD).astype(int)
    recall_by_kind = {
        kind: float(recall_score(anomaly[fault == kind], flagged[fault == kind], zero_division=0))
        for kind in ("battery_drop", "speed_spike")
        if (anomaly[fault == kind] == 1).any()
    }
    return {
        "range_mae_km": round(mae, 3),
        "range_mae_pct_of_mean_range": round(100.0 * mae / float(range_km.mean()), 2),
        "mean_range_km": round(float(range_km.mean()), 2),
        "anomaly_threshold": THRESHOLD,
        "anomaly_precision": round(float(precision_score(anomaly, flagged, zero_division=0)), 4),
        "anomaly_recall": round(float(recall_score(anomaly, flagged, zero_division=0)), 4),
        "anomaly_f1": round(float(f1_score(anomaly, flagged, zero_division=0)), 4),
        "anomaly_roc_auc": round(float(roc_auc_score(anomaly, y[:, 1])), 4),
        "anomaly_recall_by_fault": {k: round(v, 4) for k, v in recall_by_kind.items()},
        "false_alarms_per_1000_normal_rows": round(1000.0 * float(flagged[anomaly == 0].mean()), 3),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--data", default=os.path.join(here, "car-dataset.csv"), help="the CSV of car-dataset")
    parser.add_argument("--out-dir", default=here, help="where the .onnx files and metrics.json go")
    parser.add_argument("--seed", type=int, default=1, help="seed of the split and of training")
    parser.add_argument("--held-out", type=float, default=0.2, help="fraction of cars held out for the figures")
    parser.add_argument("--hidden", default="32,16", help="hidden layer sizes of the MLP")
    parser.add_argument("--max-iter", type=int, default=300, help="most epochs of the MLP")
    parser.add_argument("--dataset-command", default=DATASET_COMMAND, help="how the CSV was made (for metrics.json)")
    args = parser.parse_args()

    x, range_km, anomaly, car, fault = load(args.data)
    cars = np.unique(car)
    rng = np.random.default_rng(args.seed)
    held_out = rng.choice(cars, size=max(1, int(round(len(cars) * args.held_out))), replace=False)
    test = np.isin(car, held_out)
    train = ~test
    print(f"{len(x)} rows, {len(cars)} cars: {train.sum()} rows to train on, {test.sum()} rows of {len(held_out)} held-out cars")

    hidden = tuple(int(h) for h in args.hidden.split(",") if h)
    mlp = Pipeline(
        [
            ("scale", StandardScaler()),
            (
                "mlp",
                MLPRegressor(
                    hidden_layer_sizes=hidden,
                    activation="relu",
                    alpha=1e-4,
                    batch_size=256,
                    learning_rate_init=1e-3,
                    max_iter=args.max_iter,
                    early_stopping=True,
                    validation_fraction=0.1,
                    n_iter_no_change=15,
                    random_state=args.seed,
                ),
            ),
        ]
    )
    mlp.fit(x[train], targets(range_km[train], anomaly[train]))
    rescale_output_layer(mlp)
    print(f"mlp: {mlp.steps[-1][1].n_iter_} epochs")

    # The linear model: an MLP with one identity layer is linear end to end, and skl2onnx
    # exports it with MatMul/Add (its LinearRegression/Ridge converters use ai.onnx.ml).
    def linear():
        return Pipeline(
            [
                ("scale", StandardScaler()),
                (
                    "linear",
                    MLPRegressor(
                        hidden_layer_sizes=(2,),
                        activation="identity",
                        alpha=0.0,
                        batch_size=256,
                        max_iter=60,
                        early_stopping=True,
                        random_state=args.seed,
                    ),
                ),
            ]
        )

    lin = linear().fit(x[train], targets(range_km[train], anomaly[train]))
    rescale_output_layer(lin)
    wrong = linear().fit(x[train][:, :5], targets(range_km[train], anomaly[train]))
    rescale_output_layer(wrong)

    names = ", ".join(FEATURE_NAMES)
    contract = f"input {INPUT_NAME} float32 [N, 6] = [{names}]; output {OUTPUT_NAME} float32 [N, 2] = [range_km, anomaly_score]"
    files = {
        "car-model.onnx": (mlp, 6, f"Cars' range and anomaly model (StandardScaler + MLP {hidden}, ReLU). {contract}"),
        "car-model-linear.onnx": (lin, 6, f"Cars' range and anomaly model, linear (StandardScaler + linear). {contract}"),
        "wrong-shape.onnx": (
            wrong,
            5,
            "A valid linear model over only the first 5 features (input float32 [N, 5]): the wrong shape for the cars' handler.",
        ),
    }
    checks = {}
    for name, (model, n, doc) in files.items():
        path = os.path.join(args.out_dir, name)
        export(model, n, path, doc)
        diff = verify(path, model, x[test][:, :n], n)
        checks[name] = {
            "bytes": os.path.getsize(path),
            "max_abs_diff_onnxruntime_vs_sklearn": {"range_km": diff[0], "anomaly_score": diff[1]},
        }
        print(f"{path}: {checks[name]['bytes']} bytes, onnxruntime matches scikit-learn within {diff}")

    # For scale: the range a driver would reckon from the battery and the window's consumption.
    reckoned = np.maximum(x[test][:, 1] - 5.0, 0.0) / np.maximum(x[test][:, 3], 0.05)
    baseline_mae = float(mean_absolute_error(range_km[test], reckoned))

    metrics = {
        "contract": {
            "input": {"name": INPUT_NAME, "type": "float32", "shape": ["N", 6]},
            "output": {"name": OUTPUT_NAME, "type": "float32", "shape": ["N", 2], "columns": ["range_km", "anomaly_score"]},
            "feature_names": FEATURE_NAMES,
            "anomaly_score_range": [0.0, 1.0],
            "anomaly_threshold": THRESHOLD,
            "opset": OPSET,
        },
        "rows": {
            "total": int(len(x)),
            "train": int(train.sum()),
            "held_out": int(test.sum()),
            "cars": int(len(cars)),
            "held_out_cars": int(len(held_out)),
            "anomalies_train": int(anomaly[train].sum()),
            "anomalies_held_out": int(anomaly[test].sum()),
        },
        "held_out": {
            "car-model.onnx": figures(mlp, x[test], range_km[test], anomaly[test], fault[test]),
            "car-model-linear.onnx": figures(lin, x[test], range_km[test], anomaly[test], fault[test]),
            "baseline_battery_over_window_consumption": {
                "range_mae_km": round(baseline_mae, 3),
                "range_mae_pct_of_mean_range": round(100.0 * baseline_mae / float(range_km[test].mean()), 2),
            },
        },
        "files": checks,
        "commands": {
            "dataset": args.dataset_command,
            "train": "python3 " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0])] + sys.argv[1:]),
        },
        "versions": {
            "python": sys.version.split()[0],
            "scikit-learn": sklearn.__version__,
            "skl2onnx": skl2onnx.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
            "numpy": np.__version__,
        },
    }
    with open(os.path.join(args.out_dir, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
        f.write("\n")
    print(json.dumps(metrics["held_out"], indent=2))


if __name__ == "__main__":
    main()
