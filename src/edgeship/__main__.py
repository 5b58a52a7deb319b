from edgeship.cli.main import entry

entry()
