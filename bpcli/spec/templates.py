"""Starter specs for ``bpcli init``: commented, valid, and small enough to train in seconds.

A test validates and builds every template, and trains those that carry their own data.
"""

from __future__ import annotations

_EDITOR = """\
# Check it: bpcli validate {file}   Resolved, with every default: bpcli show {file}
# Editor completion: bpcli schema --out bpcli.schema.json, then make this the first line:
#   # yaml-language-server: $schema=bpcli.schema.json
"""

LECTURE = """\
# The lecture's 3-layer network:
#   L(W) = 1/N sum_i ln(1 + exp(-y_i max(0, W3 max(0, W2 max(0, W1 x_i)))))
# W1 and W2 are banded Toeplitz matrices (1-channel convolutions without bias),
# W3 a full matrix (dense, one output), trained by steepest descent.
{editor}version: 1
input: [64]            # one sample: [length], [channels, length] or [channels, height, width]
seed: 0                # initialization, data split and shuffling
data: {{builtin: pulses, n: 1000, val_split: 0.2}}   # a pulse in this noise? (--data FILE wins)
layers:
  - conv1d: {{channels: 1, kernel: 5, pad: same, bias: false}}   # W1: banded Toeplitz
  - relu
  - conv1d: {{channels: 1, kernel: 5, pad: same, bias: false}}   # W2: banded Toeplitz
  - relu
  - dense: {{units: 1, bias: false}}                              # W3: full matrix
  - relu               # the lecture's last max(0, .); drop it to let the logit go negative
loss: logistic         # mean ln(1 + exp(-y f)), labels -1/+1 (0 read as -1)
optimizer: {{name: gd, lr: 0.05}}   # W -= lr dL/dW on the whole training set
training:
  epochs: 100          # with gd: iterations
  precision: 1.0e-7    # stop once the largest |dW| of a step is below this
"""

CNN1D = """\
# A 1-D convolutional classifier for signals: two convolutions, max pooling, a dense logit.
{editor}version: 1
input: [1, 64]         # [channels, length]
seed: 0
data: {{builtin: pulses, n: 2000, val_split: 0.2}}   # or: bpcli train {file} --data my.npz
layers:
  - conv1d: {{channels: 8, kernel: 9, pad: same}}
  - relu
  - maxpool1d: {{size: 2}}
  - conv1d: {{channels: 8, kernel: 9, pad: same}}
  - relu
  - dense: {{units: 1}}  # one logit: the pulse is there when it is > 0
loss: logistic
optimizer: {{name: adam, lr: 0.003}}
schedule: {{name: cosine, warmup: 1}}   # lr warms up for an epoch, then falls to 0 by the end
training:
  epochs: 10
  batch_size: 64
  early_stopping: {{patience: 3, metric: val_accuracy}}
"""

CNN2D = """\
# A small 2-D convolutional classifier for 28x28 grey images: which shape is in the picture?
# The builtin shapes set draws noisy, blurred discs, squares, crosses, triangles and rings.
# On your own images, with K classes: set the last layer's units to K, and give either
#   --data DIR: a folder with one subfolder of pictures per class (DIR/cat/*.png, DIR/dog/*.jpg),
#     the folder names the classes; pictures of another size than 28x28 need data.resize: true
#     (--set data.resize=true), colour ones input: [3, 28, 28] (else read as grey); or
#   --data images.npz: an array X of shape (N, 1, 28, 28) and labels y, integers 0..K-1.
# For DIR/cat and DIR/dog: bpcli train {file} --data DIR --set 'layers[6].dense.units=2'
{editor}version: 1
input: [1, 28, 28]     # [channels, height, width]
seed: 0
data: {{builtin: shapes, n: 2000, classes: 5, val_split: 0.2}}
preprocess: standardize          # mean 0, std 1, from the training split
layers:
  - conv2d: {{channels: 8, kernel: 3, pad: same}}
  - relu
  - maxpool2d: {{size: 2}}          # 28x28 -> 14x14
  - conv2d: {{channels: 16, kernel: 3, pad: same}}
  - relu
  - maxpool2d: {{size: 2}}          # 14x14 -> 7x7
  - dense: {{units: 5}}             # one score per class
loss: softmax_cross_entropy       # labels 0..4
optimizer: {{name: adam, lr: 0.003}}
training: {{epochs: 10, batch_size: 32}}
"""

CLASSIFIER = """\
# A multilayer perceptron that classifies the rows of a table (CSV): numbers in the feature
# columns, a class name (or an index 0..K-1) in the label column.
# As written it trains on a stand-in table: builtin pulses, rows of 16 numbers (a noisy signal
# read as 16 feature columns) labelled 0 or 1 (is there a pulse in it?), so 2 classes.
# For your CSV, change the two lines marked CHANGE and give the file and its label column:
#   bpcli train {file} --data FILE.csv --target COLUMN
# (or data: {{path: FILE.csv, target: COLUMN}} in place of the builtin line). Every other column
# is a feature; the class names are read from COLUMN and numbered in sorted order
# (data.classes: [name, ...] gives the order). The same from the command line, for 4 feature
# columns and 3 classes: --set 'input=[4]' --set 'layers[2].dense.units=3'
{editor}version: 1
input: [16]            # CHANGE: [number of feature columns], every column but the label
seed: 0
data: {{builtin: pulses, n: 1000, val_split: 0.2}}   # the stand-in; --data FILE.csv wins
preprocess: standardize          # each column to mean 0, std 1 (from the training split)
layers:
  - dense: {{units: 32}}
  - relu
  - dense: {{units: 2}}  # CHANGE: the number of classes, one score each
loss: softmax_cross_entropy      # the class with the highest score is the prediction
optimizer: {{name: adam, lr: 0.01}}
training: {{epochs: 30, batch_size: 32}}
"""

MLP = """\
# A multilayer perceptron for regression: y = f(x) from 8 numbers per sample.
# To classify (labels that are class names): bpcli init --template classifier
{editor}version: 1
input: [8]
seed: 0
data: {{builtin: linear, n: 1000, val_split: 0.2}}   # y = X w + noise; or --data FILE.csv
layers:
  - dense: {{units: 32}}
  - relu
  - dense: {{units: 32}}
  - relu
  - dense: {{units: 1}}
loss: mse
init: he                        # or xavier, normal, uniform, zeros
optimizer: {{name: adam, lr: 0.01}}
regularization: {{l2: 1.0e-4}}    # lambda sum w^2 over the weights
training: {{epochs: 50, batch_size: 32}}
"""

TEMPLATES = {"lecture": LECTURE, "classifier": CLASSIFIER, "cnn1d": CNN1D, "cnn2d": CNN2D,
             "mlp": MLP}


def render(template: str, file: str) -> str:
    """The text of ``template`` for a spec to be saved as ``file``."""
    return TEMPLATES[template].format(editor=_EDITOR.format(file=file), file=file)
