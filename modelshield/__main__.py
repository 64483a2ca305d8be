from modelshield.cli import main

main()
