"""Float64 NumPy oracle of the attention modules, written from the paper's supplementary
equations with explicit loops over positions: independent of the production code, slow, and
only for the small tensors the tests use. Every function works on ONE sample ``I`` of shape
(C, H, W) unless it says otherwise.
"""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax of a 1-D vector, shifted by its max for safety."""
    e = np.exp(logits - logits.max())
    return e / e.sum()


def conv1x1(weight: np.ndarray, bias: np.ndarray | None, x: np.ndarray) -> np.ndarray:
    """1x1 convolution: weight (Cout, Cin[,1,1]), x (Cin, H, W) -> (Cout, H, W)."""
    w = weight.reshape(weight.shape[0], -1)
    out = np.einsum("oc,chw->ohw", w, x)
    return out if bias is None else out + bias[:, None, None]


def conv3x3_same(weight: np.ndarray, x: np.ndarray) -> np.ndarray:
    """3x3 convolution, stride 1, zero padding 1, no bias: weight (Cout, Cin, 3, 3)."""
    cout = weight.shape[0]
    _, h, w = x.shape
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    out = np.zeros((cout, h, w))
    for o in range(cout):
        for r in range(h):
            for c in range(w):
                out[o, r, c] = np.sum(weight[o] * padded[:, r : r + 3, c : c + 3])
    return out


def spatial_attention_1s(I, wq, bq, wk, bk, wv, bv, alpha):
    """Eqs. (5)-(6): A_ji = softmax_i(K_i . Q_j); O_j = alpha * sum_i A_ji V_i + I_j."""
    C, H, W = I.shape
    Q = conv1x1(wq, bq, I).reshape(-1, H * W)
    K = conv1x1(wk, bk, I).reshape(-1, H * W)
    V = conv1x1(wv, bv, I).reshape(C, H * W)
    X = I.reshape(C, H * W)
    O = np.empty_like(X)
    for j in range(H * W):
        a = softmax(np.array([K[:, i] @ Q[:, j] for i in range(H * W)]))
        O[:, j] = alpha * sum(a[i] * V[:, i] for i in range(H * W)) + X[:, j]
    return O.reshape(C, H, W)


def channel_attention_1c(I, alpha):
    """Eqs. (7)-(8): A_ji = softmax_i(I_i . I_j) over channels; O_j = alpha * sum_i A_ji I_i + I_j."""
    C, H, W = I.shape
    X = I.reshape(C, H * W)
    O = np.empty_like(X)
    for j in range(C):
        a = softmax(np.array([X[i] @ X[j] for i in range(C)]))
        O[j] = alpha * sum(a[i] * X[i] for i in range(C)) + X[j]
    return O.reshape(C, H, W)


def hyper_attention_1h(I, wq, bq, wk, bk, wv, bv, wo, bo, alpha):
    """Eq. (9) over the C'HW scalar locations, then a 1x1 conv C' -> C and the scaled residual."""
    Q = conv1x1(wq, bq, I)
    K = conv1x1(wk, bk, I).ravel()
    V = conv1x1(wv, bv, I).ravel()
    q = Q.ravel()
    out = np.empty_like(q)
    for j in range(q.size):
        a = softmax(np.array([K[i] * q[j] for i in range(K.size)]))
        out[j] = a @ V
    return alpha * conv1x1(wo, bo, out.reshape(Q.shape)) + I


def batch_attention_1b(F, alpha):
    """Eqs. (10)-(11) on a whole batch F (B, C, H, W): A_ji = softmax_i(F_i . F_j)."""
    B = F.shape[0]
    X = F.reshape(B, -1)
    O = np.empty_like(X)
    for j in range(B):
        a = softmax(np.array([X[i] @ X[j] for i in range(B)]))
        O[j] = alpha * sum(a[i] * X[i] for i in range(B)) + X[j]
    return O.reshape(F.shape)


def spatial_map_2s(I, w3x3):
    """Eq. (12)'s map: softmax over all HW positions of conv3x3([Avg_c(I); Max_c(I)])."""
    pooled = np.stack([I.mean(axis=0), I.max(axis=0)])
    logits = conv3x3_same(w3x3, pooled)[0]
    return softmax(logits.ravel()).reshape(1, *logits.shape)


def channel_map_2c(I, w1, w2):
    """Eq. (13)'s map: softmax over C of MLP(AvgPool(I)) + MLP(MaxPool(I)), MLP = W2 relu(W1 .)."""
    w1 = w1.reshape(w1.shape[0], -1)
    w2 = w2.reshape(w2.shape[0], -1)
    mlp = lambda d: w2 @ np.maximum(w1 @ d, 0.0)  # noqa: E731
    logits = mlp(I.mean(axis=(1, 2))) + mlp(I.max(axis=(1, 2)))
    return softmax(logits)[:, None, None]


def hyper_map_2h(I):
    """Eq. (14)'s map: softmax of I over all C*H*W entries."""
    return softmax(I.ravel()).reshape(I.shape)
