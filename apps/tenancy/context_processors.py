def tenancy(request) -> dict:
    """The active tenant and the memberships the admin's tenant switcher offers."""
    return {
        "bulwark_tenant": getattr(request, "tenant", None),
        "bulwark_role": getattr(request, "role", None),
        "bulwark_memberships": getattr(request, "bulwark_memberships", []),
    }
