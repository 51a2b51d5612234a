"""Sweeps: run a grid of every defense x hyperparameter value x seed x attack, in parallel.

``bench sweep grid.yaml [--results DIR] [--checkpoints DIR] [--executor local|serial|ray]
[--workers N] [--threads N] [--dry-run] [--quiet] [--verbose]``

The grid file
-------------
::

    protocol: quick                  # a shipped protocol, or a path (relative to the grid file)
    overrides: [training.epochs=2]   # optional: key=value, as `bench run --set`, for every job
    defenses:                        # a list of names, or a mapping for hyperparameter grids:
      baseline:                      #   no hyperparameters swept
      pixel_sim:                     #   each combination is one variant (here 2 x 2 = 4),
        alpha: [1.0, 4.0]            #   applied as --set defenses.pixel_sim.alpha=1.0 ...
        n_images: [500, 2000]
    seeds: [0, 1, 2]                 # optional, default: the protocol's seeds
    attacks: [fgsm, pgd]             # optional, default: every attack the protocol configures
    executor: local                  # optional: local (default), serial or ray
    workers: 2                       # optional: jobs at a time (default: the cores, or the Ray cluster's CPUs)

``defenses: [baseline, pixel_sim]`` runs each with the protocol's parameters. Every value
of a hyperparameter is a list, even a single one (``n_images: [500]``); list-valued
parameters are lists of lists. The whole grid is checked before any work starts (unknown
keys, defense, attack and parameter names, values of the wrong type, variants that resolve
to the same protocol) and every problem is reported at once. Each variant's parameters
change its protocol hash, so its records live in their own ``<protocol>-<hash12>`` folder,
exactly where ``bench run --set defenses.<name>.<param>=<value>`` would put them.

Jobs, reruns and failures
-------------------------
One job is one (defense variant, seed): it trains (or reuses) the model once and runs all
the grid's attacks on it, through ``bench.runner.run``, so a sweep writes the same records
as the equivalent ``bench run`` commands. A job whose records all exist is skipped without
being submitted; the others skip their existing records. An interrupted sweep is resumed by
rerunning it: finished records are kept, and interrupted training resumes from ``last.pt``.
A model that several jobs would train (the base model of input transformations, the
baseline surrogate of transfer attacks) is trained first by a single job, so two jobs never
train one checkpoint concurrently. A job that fails (any ``BenchError``: a diverging loss,
missing data) is reported with its message and the others go on; ``bench sweep`` then exits
with status 2, and a rerun retries only what is missing. At the end the summary table of
``bench report`` is printed for the sweep's records, variants named by their parameters.

Executors
---------
``Executor.map(jobs)`` yields each job's result as it finishes; adding an engine is one
subclass registered with ``@register_executor`` (see ``bench.sweep.executors``).

- ``local`` (default): a ``concurrent.futures`` process pool (spawn start method) on this
  machine, each worker with cores // workers torch threads, so workers never oversubscribe
  the cores.
- ``serial``: the jobs one after another in this process, for debugging.
- ``ray``: Ray tasks on a local Ray instance or a cluster (``ray.init`` before the sweep,
  ``RAY_ADDRESS``, or a local instance started for the sweep). Ray was chosen as the
  distributed engine because it is one ``pip install ray`` that leaves torch and numpy as
  they are, runs the same code on a laptop (a local instance in-process, as the tests do)
  and on a multi-node cluster (``ray start --head`` / ``--address``), schedules tasks by
  reserved CPUs (and GPUs), and reports a task whose worker died as an exception instead
  of hanging. Dask or submitit (Slurm) would fit the same interface. On a cluster, every node
  needs this package installed and the results and checkpoint folders on a shared filesystem.

Concurrency: records are written with ``write_json_atomic`` (a unique temporary file, fsync,
``os.replace``) and checkpoints with ``save_checkpoint`` (the same with a per-process
temporary name), so many workers writing into one results folder never tear a record.
``summary.json`` is rewritten from the records of one (defense, seed) folder by the job that
owns it; no two jobs of a sweep share such a folder.
"""

from bench.sweep.executors import EXECUTORS, Executor, make_executor, register_executor
from bench.sweep.grid import Grid, Variant, load_grid
from bench.sweep.jobs import EvaluateJob, JobResult, Target, TrainJob
from bench.sweep.sweep import SweepReport, plan, run_sweep

__all__ = ["EXECUTORS", "EvaluateJob", "Executor", "Grid", "JobResult", "SweepReport", "Target", "TrainJob", "Variant",
           "load_grid", "make_executor", "plan", "register_executor", "run_sweep"]
