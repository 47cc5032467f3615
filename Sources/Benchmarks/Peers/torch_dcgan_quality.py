"""PyTorch's DCGAN with rlbench's DCGAN network and recipe, scored by rlbench's own LeNet scorer.

Run by hand (not by the test suite), to tell an implementation gap from a recipe's limit and to search recipes fast:
    python3 torch_dcgan_quality.py --seed 0 --mnist DIR --scorer ~/.cache/rlbench/classifiers/mnist-lenet.safetensors
The scorer file is the one `rlbench run dcgan --data mnist` trains and caches on first use. Prints the confident
fraction (samples the LeNet classifies with probability > 0.9) and the entropy of the predicted-class histogram over
10,000 samples, as eval.json's classifier_confident_fraction and classifier_entropy; after each epoch the same on
2,000 samples; and with --real, the scorer's own figures on the MNIST test images (the ceiling a generator can reach).
The knobs mirror rlbench's dcgan keys: --channels (channels), --dense (dense: a hidden linear layer of that many
units with batch norm in both networks, as InfoGAN's MNIST networks; 0: none), --batch, --label-smoothing,
--generator-lr (generator_learning_rate), and
--average (generator_average: also score samples of a moving average of the generator's weights and batch-norm
statistics with this decay).
"""
import argparse, copy, glob, gzip, time
import numpy as np, torch, torch.nn as nn
from safetensors.torch import load_file

parser = argparse.ArgumentParser()
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--channels", default="64,128", help="the discriminator's two convolutions; the generator mirrors them")
parser.add_argument("--dense", type=int, default=0, help="a hidden linear layer of this width in both networks (0: none)")
parser.add_argument("--batch", type=int, default=64)
parser.add_argument("--label-smoothing", type=float, default=0.0, help="one-sided: real images' target is 1 - this")
parser.add_argument("--generator-lr", type=float, default=2e-4, help="the generator's Adam step size (the discriminator's: 2e-4)")
parser.add_argument("--average", type=float, default=0.0, help="also score a moving average of G with this decay")
parser.add_argument("--mnist", required=True, help="folder of MNIST's IDX files")
parser.add_argument("--scorer", required=True, help="rlbench's cached LeNet scorer (mnist-lenet.safetensors)")
parser.add_argument("--real", action="store_true", help="also score the MNIST test images")
parser.add_argument("--threads", type=int, default=2)
args = parser.parse_args()
torch.manual_seed(args.seed)
torch.set_num_threads(args.threads)

def idx(path):
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)

weights = load_file(args.scorer)
L = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                  nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                  nn.Linear(84, 10))
L.load_state_dict({k.replace("body.", "").replace("head", "11"): v for k, v in weights.items()})
L.eval()

def score(images):
    """The confident fraction and the class histogram's entropy of images in [0, 1], shaped [n, 1, 28, 28]."""
    with torch.no_grad():
        p = torch.cat([torch.softmax(L(images[i:i + 1000]), 1) for i in range(0, len(images), 1000)])
    histogram = np.bincount(p.argmax(1).numpy(), minlength=10) / len(p)
    entropy = max(0.0, -(histogram[histogram > 0] * np.log(histogram[histogram > 0])).sum())
    return (p.max(1).values > 0.9).float().mean().item(), entropy

if args.real:
    test = torch.tensor(idx(glob.glob(f"{args.mnist}/t10k-images*")[0]).astype(np.float32) / 255).unsqueeze(1)
    print("MNIST test images: confident fraction %.4f, entropy %.4f" % score(test), flush=True)

images = torch.tensor(idx(glob.glob(f"{args.mnist}/train-images*")[0]).astype(np.float32) / 255).unsqueeze(1) * 2 - 1
c1, c2 = (int(c) for c in args.channels.split(","))
dense_g = [nn.Linear(100, args.dense), nn.BatchNorm1d(args.dense), nn.ReLU()] if args.dense else []
dense_d = [nn.Linear(c2 * 49, args.dense), nn.BatchNorm1d(args.dense), nn.LeakyReLU(0.2)] if args.dense else []
G = nn.Sequential(*dense_g, nn.Linear(args.dense or 100, c2 * 49), nn.BatchNorm1d(c2 * 49), nn.ReLU(),
                  nn.Unflatten(1, (c2, 7, 7)),
                  nn.ConvTranspose2d(c2, c1, 4, 2, 1), nn.BatchNorm2d(c1), nn.ReLU(),
                  nn.ConvTranspose2d(c1, 1, 4, 2, 1), nn.Tanh())
D = nn.Sequential(nn.Conv2d(1, c1, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(c1, c2, 4, 2, 1), nn.BatchNorm2d(c2),
                  nn.LeakyReLU(0.2), nn.Flatten(), *dense_d, nn.Linear(args.dense or c2 * 49, 1))
for m in list(G.modules()) + list(D.modules()):  # the DCGAN paper's initialization, as rlbench's weight_init: dcgan
    if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0, 0.02); nn.init.zeros_(m.bias)
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(m.weight, 1, 0.02); nn.init.zeros_(m.bias)
optG = torch.optim.Adam(G.parameters(), args.generator_lr, betas=(0.5, 0.999))
optD = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
bce = nn.BCEWithLogitsLoss()
average = copy.deepcopy(G) if args.average else None

def sample_score(n):
    """The figures of n samples, and of the averaged generator's when there is one, on the same noise."""
    z = torch.randn(n, 100)
    figures = []
    for g in [G] + ([average] if average else []):
        g.eval()
        with torch.no_grad():
            figures.append(score(torch.cat([g(z[i:i + 1000]) for i in range(0, n, 1000)]) * 0.5 + 0.5))
        g.train()
    return "; ".join(name + "confident fraction %.4f, entropy %.4f" % f for name, f in zip(["", "averaged: "], figures))

start = time.time()
for epoch in range(args.epochs):
    order = torch.randperm(len(images))
    for i in range(0, len(images), args.batch):
        real = images[order[i:i + args.batch]]
        n = len(real)
        if n < 2: continue  # batch norm needs two rows
        fake = G(torch.randn(n, 100))
        lossD = bce(D(real), torch.full((n, 1), 1 - args.label_smoothing)) + bce(D(fake.detach()), torch.zeros(n, 1))
        optD.zero_grad(); lossD.backward(); optD.step()
        lossG = bce(D(fake), torch.ones(n, 1))  # the non-saturating generator loss
        optG.zero_grad(); lossG.backward(); optG.step()
        if average:
            with torch.no_grad():
                for a, v in zip(average.state_dict().values(), G.state_dict().values()):
                    if a.is_floating_point(): a.mul_(args.average).add_(v, alpha=1 - args.average)
    print("epoch %d: %.0f s, 2,000 samples: %s" % (epoch + 1, time.time() - start, sample_score(2000)), flush=True)
print("10,000 samples:", sample_score(10000))
