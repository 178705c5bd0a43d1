from callscribe.cli import app

app(prog_name="callscribe")
