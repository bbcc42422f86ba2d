from imagehop.cli import main

main()
