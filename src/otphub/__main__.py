from otphub.cli import main

main()
