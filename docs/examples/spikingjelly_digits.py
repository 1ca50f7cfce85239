"""A plain SpikingJelly 2.x training script: a small conv SNN on scikit-learn's digits.

Nothing here knows about snnplug. docs/spikingjelly.md shows the one or two lines that switch
it to each plugin; integration_tests/test_spikingjelly_script.py runs it as is and with those
lines inserted at the marked place.
"""

import argparse

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from spikingjelly.activation_based import functional, layer, neuron, surrogate
from torch import nn


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--T", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-2)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)

    digits = load_digits()
    x = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(digits.target)
    perm = torch.randperm(len(x))
    train_idx, test_idx = perm[:1400], perm[1400:]

    net = nn.Sequential(
        layer.Conv2d(1, 16, 3, padding=1, bias=False), layer.BatchNorm2d(16),
        neuron.IFNode(surrogate_function=surrogate.ATan(), detach_reset=True),
        layer.AvgPool2d(2),
        layer.Conv2d(16, 32, 3, padding=1, bias=False), layer.BatchNorm2d(32),
        neuron.IFNode(surrogate_function=surrogate.ATan(), detach_reset=True),
        layer.AvgPool2d(2),
        layer.Flatten(), layer.Linear(32 * 2 * 2, 10),
    )
    functional.set_step_mode(net, "m")
    # --- snnplug lines go here ---
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)

    for epoch in range(args.epochs):
        net.train()
        for i in range(0, len(train_idx), 64):
            idx = train_idx[i:i + 64]
            x_seq = x[idx].unsqueeze(0).repeat(args.T, 1, 1, 1, 1)  # direct input, [T, B, C, H, W]
            out = net(x_seq).mean(0)
            loss = F.cross_entropy(out, y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            functional.reset_net(net)

    net.eval()
    with torch.no_grad():
        x_seq = x[test_idx].unsqueeze(0).repeat(args.T, 1, 1, 1, 1)
        acc = (net(x_seq).mean(0).argmax(1) == y[test_idx]).float().mean().item()
        functional.reset_net(net)
    kinds = sorted({type(m).__name__ for m in net.modules() if "Node" in type(m).__name__ or "Norm" in type(m).__name__})
    print(f"modules: {','.join(kinds)}")
    print(f"test accuracy: {acc:.4f}")


if __name__ == "__main__":
    main()
