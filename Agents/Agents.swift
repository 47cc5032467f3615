// Learning agents.
