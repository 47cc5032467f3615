// Learning agents: see README.
