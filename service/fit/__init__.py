"""`lensserve fit`: the staged lens-modelling pipeline (`client.pipeline`) run through the service.

Without `--url` it writes a service config for the dataset with one model per stage still to run,
starts `lensserve serve` on a free loopback port and stops it at the end; with `--url` it uses the
models configured there, named by `--models`. Each stage is a nautilus run through the client
(`service.fit.stage`); the pictures evaluate the best fit in-process. `report.md` links the stages'
outputs.
"""
