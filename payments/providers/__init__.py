"""Payment providers: alipay, wechat, balance and sandbox (the payments issue builds them)."""
