"""Role-based permissions (DESIGN §4): viewer < operator < manager < admin.

A view declares `read_role` (default viewer) and `write_role`; an action may declare its own
`required_role` (passed through `@action(required_role=...)`). The authenticated request's
`auth` is the tenancy context, which knows the caller's role.
"""

from rest_framework.permissions import SAFE_METHODS, BasePermission


def required_role(view, method: str) -> str:
    """The least role that may call `view` (for its current action) with `method`."""
    required = getattr(view, "required_role", None)
    if required is None:
        if method.upper() in SAFE_METHODS:
            required = getattr(view, "read_role", "viewer")
        else:
            required = getattr(view, "write_role", "admin")
    return required


class RolePermission(BasePermission):
    message = "Your role does not allow this."

    def has_permission(self, request, view) -> bool:
        context = request.auth
        if context is None or not hasattr(context, "has_role"):
            return False
        # An operation the route does not have: DRF's 405 for whoever may read the resource (a
        # 403 naming the write role told them it existed); those who may not read it learn nothing.
        method = request.method if hasattr(view, request.method.lower()) else "GET"
        required = required_role(view, method)
        if not context.has_role(required):
            self.message = f"This needs the {required} role or higher; your role is {context.role}."
            return False
        return True
