import Foundation

/// A sweep as a Slurm job array (`rlbench sweep SPEC --backend slurm --emit FILE`): one array task per run, each
/// running `rlbench sweep SPEC --task N`, so that a task decides at its start whether its run is done, resumes or
/// starts, and submitting the same script again continues whatever a time limit stopped. The spec, the sweep's
/// folder and the binary must be on a filesystem every node sees.
public struct SlurmArray {
    public let spec: URL
    public let folder: URL
    public let binary: URL
    public let runCount: Int

    public init(spec: URL, folder: URL, binary: URL, runCount: Int) {
        self.spec = spec; self.folder = folder; self.binary = binary; self.runCount = runCount
    }

    /// The sbatch script.
    public var script: String {
        func quoted(_ url: URL) -> String { "'" + url.standardizedFileURL.path.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        return """
        #!/bin/bash
        # rlbench sweep \(spec.lastPathComponent): \(runCount) runs, one array task each (task N is run N of `rlbench sweep --dry-run`).
        # Submit with `sbatch` from any folder; edit the limits to your cluster. Submitting again continues the sweep.
        #SBATCH --job-name=rlbench-sweep
        #SBATCH --array=0-\(runCount - 1)
        #SBATCH --cpus-per-task=1
        #SBATCH --time=02:00:00
        #SBATCH --signal=B:INT@60
        #SBATCH --output=\(folder.standardizedFileURL.path)/slurm-%A_%a.out
        # --signal: a minute before the time limit the run is asked to stop; it saves a checkpoint to resume from.
        export RLBENCH_CORES="${SLURM_CPUS_PER_TASK:-1}"
        exec \(quoted(binary)) sweep \(quoted(spec)) --out \(quoted(folder)) --task "$SLURM_ARRAY_TASK_ID" --plain

        """
    }
}
