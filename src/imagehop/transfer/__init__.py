"""Transfer: the client side that moves images between regions and clouds, over HTTP only."""
