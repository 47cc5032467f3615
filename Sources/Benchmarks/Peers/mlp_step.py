# The MLP training step of `rlbench bench core` in PyTorch. argv: width, batch, seconds.
# Prints the best per-call time in microseconds, the faster thread count (1 or 2) and torch's version; exit 3 without torch.
import sys, time
try:
    import torch
except ImportError:
    sys.exit(3)
width, batch, budget = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
best = None
for threads in (1, 2):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, width), torch.nn.Tanh(), torch.nn.Linear(width, width),
                              torch.nn.Tanh(), torch.nn.Linear(width, 2))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = torch.randn(batch, 4), torch.randn(batch, 2)
    def step():
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(x), y).backward()
        opt.step()
    for _ in range(200): step()
    fastest, end = float("inf"), time.perf_counter() + budget
    while time.perf_counter() < end:
        start = time.perf_counter()
        for _ in range(20): step()
        fastest = min(fastest, (time.perf_counter() - start) / 20)
    if best is None or fastest < best[0]: best = (fastest, threads)
print(best[0] * 1e6, best[1], torch.__version__)
