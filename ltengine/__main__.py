from ltengine.cli import main

main()
