# Admin registrations for payments arrive with the issue that builds its models.
