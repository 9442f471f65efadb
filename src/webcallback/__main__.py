from webcallback.cli.main import main

main()
