"""Orders: Order, OrderItem, OrderEvent, after-sales (the orders issue builds them)."""
