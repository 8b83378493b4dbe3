"""The app's Home tab: each person's dashboard, published with `views.publish`."""
