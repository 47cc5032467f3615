# The PyTorch side of `rlbench bench layers` and `rlbench bench generative`: the same models and steps as
# LayerSteps.swift and Sources/Generative. Exit status 3 when torch cannot be imported. argv: threads, then
#   session                    prints "ready <torch version>", then answers lines "<model> <batch> <seconds> [argument]"
#                              (the MNIST folder, or the GAN's settings as JSON) with the median step time in µs
#   lenet_epoch <mnist dir>    one MNIST epoch of LeNet-5 (batch 64, Adam): a JSON object
#   vae <mnist dir> <epochs> [seed]   the PyTorch examples' MNIST VAE (torch.manual_seed(seed), 0 by default): a JSON object
import gzip, json, os, resource, statistics, sys, time
try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    sys.exit(3)
torch.set_num_threads(int(sys.argv[1]))
torch.manual_seed(0)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def mnist(directory, part):
    """Images as float [n, 784] in [0, 1] and labels, from the IDX files (gzipped or not)."""
    def read(name, skip):
        path = os.path.join(directory, name)
        data = gzip.open(path + ".gz").read() if os.path.exists(path + ".gz") else open(path, "rb").read()
        return torch.frombuffer(bytearray(data[skip:]), dtype=torch.uint8)
    prefix = "train" if part == "train" else "t10k"
    images = read(prefix + "-images-idx3-ubyte", 16).float().div_(255).view(-1, 784)
    return images, read(prefix + "-labels-idx1-ubyte", 8).long()


def lenet():
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10))


def lenet_step(batch, data):
    net = lenet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = torch.rand(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
    def step():
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    return step


def dcgan_step(batch, data):
    latent = 100
    g = nn.Sequential(nn.Linear(latent, 128 * 7 * 7), nn.BatchNorm1d(128 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (128, 7, 7)),
                      nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),
                      nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Tanh())
    d = nn.Sequential(nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128),
                      nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(128 * 7 * 7, 1))
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    images = mnist(data, "train")[0].view(-1, 1, 28, 28) * 2 - 1 if data else torch.rand(batch, 1, 28, 28) * 2 - 1
    ones, zeros = torch.ones(batch, 1), torch.zeros(batch, 1)
    position = [0]
    def step():
        start = position[0] if position[0] + batch <= len(images) else 0
        real = images[start:start + batch]
        position[0] = start + batch
        fake = g(torch.randn(batch, latent))
        d_loss = F.binary_cross_entropy_with_logits(d(real), ones) + F.binary_cross_entropy_with_logits(d(fake.detach()), zeros)
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        g_loss = F.binary_cross_entropy_with_logits(d(fake), ones)
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
    return step


def lstm_step(batch, data):
    lstm, head = nn.LSTM(16, 128, batch_first=True), nn.Linear(128, 1)
    opt = torch.optim.Adam(list(lstm.parameters()) + list(head.parameters()), lr=1e-3)
    x, y = torch.randn(batch, 32, 16), torch.randn(batch, 1)
    def step():
        _, (h, _) = lstm(x)
        opt.zero_grad()
        F.mse_loss(head(h[-1]), y).backward()
        opt.step()
    return step


def gan_step(batch, data):
    """rlbench's MLP GAN with the settings rlbench sends (its tuned digits ones: the sizes, PacGAN packing, dropout,
    one-sided label smoothing, Adam, the generator's moving average); values do not change the time."""
    c = json.loads(data)
    def dense(widths, hidden, last):
        layers = []
        for i, (a, b) in enumerate(zip(widths, widths[1:])):
            layers.append(nn.Linear(a, b))
            layers += hidden() if i < len(widths) - 2 else last
        return nn.Sequential(*layers)
    g = dense([c["latent"]] + c["generator"] + [c["features"]], lambda: [nn.ReLU()], [nn.Tanh()])
    leaky = lambda: [nn.LeakyReLU(0.2)] + ([nn.Dropout(c["dropout"])] if c["dropout"] > 0 else [])
    d = dense([c["features"] * c["pack"]] + c["discriminator"] + [1], leaky, [])
    betas = (c["beta1"], 0.999)
    opt_g = torch.optim.Adam(g.parameters(), lr=c["generator_learning_rate"], betas=betas)
    opt_d = torch.optim.Adam(d.parameters(), lr=c["learning_rate"], betas=betas)
    average = [p.detach().clone() for p in g.parameters()] if c["generator_average"] > 0 else None
    packs = batch // c["pack"]
    judged = lambda x: d(x[:packs * c["pack"]].reshape(packs, -1))
    real = torch.rand(batch, c["features"]) * 2 - 1
    real_target, ones, zeros = torch.full((packs, 1), 1 - c["label_smoothing"]), torch.ones(packs, 1), torch.zeros(packs, 1)
    def step():
        with torch.no_grad():
            fake = g(torch.randn(batch, c["latent"]))
        d_loss = F.binary_cross_entropy_with_logits(judged(real), real_target) + F.binary_cross_entropy_with_logits(judged(fake), zeros)
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        g_loss = F.binary_cross_entropy_with_logits(judged(g(torch.randn(batch, c["latent"]))), ones)
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        if average is not None:
            with torch.no_grad():
                for a, p in zip(average, g.parameters()):
                    a.lerp_(p, 1 - c["generator_average"])
    return step


def median_step_us(step, seconds):
    for _ in range(3):
        step()
    times, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 5:
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def session():
    print("ready", torch.__version__, flush=True)
    steps = {"lenet": lenet_step, "dcgan": dcgan_step, "lstm": lstm_step, "gan": gan_step}
    for line in sys.stdin:
        fields = line.split()
        model, batch, seconds = fields[0], int(fields[1]), float(fields[2])
        step = steps[model](batch, fields[3] if len(fields) > 3 else None)
        print(median_step_us(step, seconds), flush=True)


def lenet_epoch(directory):
    images, labels = mnist(directory, "train")
    images = images.view(-1, 1, 28, 28)
    net = lenet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    start = time.perf_counter()
    for rows in torch.randperm(len(images)).split(64):
        opt.zero_grad()
        F.cross_entropy(net(images[rows]), labels[rows]).backward()
        opt.step()
    print(json.dumps({"epoch_s": time.perf_counter() - start, "peak_rss_mb": peak_rss_mb()}))


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


def vae_loss(recon, x, mu, logvar):
    return F.binary_cross_entropy(recon, x, reduction="sum") - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


def vae(directory, epochs, seed=0):
    torch.manual_seed(seed)
    train, _ = mnist(directory, "train")
    test, _ = mnist(directory, "test")
    model = VAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = []
    for _ in range(epochs):
        model.train()
        start = time.perf_counter()
        for rows in torch.randperm(len(train)).split(128):
            x = train[rows]
            opt.zero_grad()
            recon, mu, logvar = model(x)
            vae_loss(recon, x, mu, logvar).backward()
            opt.step()
        times.append(time.perf_counter() - start)
    model.eval()
    with torch.no_grad():
        total = 0.0
        for x in test.split(1000):
            recon, mu, logvar = model(x)
            total += vae_loss(recon, x, mu, logvar).item()
    print(json.dumps({"epoch_s": statistics.median(times), "epoch_times": times, "test_neg_elbo": total / len(test),
                      "peak_rss_mb": peak_rss_mb()}))


if __name__ == "__main__":
    mode = sys.argv[2]
    if mode == "session":
        session()
    elif mode == "lenet_epoch":
        lenet_epoch(sys.argv[3])
    elif mode == "vae":
        vae(sys.argv[3], int(sys.argv[4]), int(sys.argv[5]) if len(sys.argv) > 5 else 0)
