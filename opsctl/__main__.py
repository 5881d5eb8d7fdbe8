from opsctl.cli.main import run

run()
