# Admin registrations for orders arrive with the issue that builds its models.
