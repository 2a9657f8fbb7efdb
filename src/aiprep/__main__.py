from aiprep.cli import main

main()
