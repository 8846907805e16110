"""Default footer pages, so a fresh shop's footer links work; operators edit them in admin.
The texts are plain starting points (the shop's own name is not known here): edit them before going live."""

from django.db import migrations

PAGES = [
    (
        "about", "关于我们", "About us", 10,
        "<p>我们是一家数字商品商店：游戏点卡、充值卡、会员和软件激活码。付款后几秒内，卡密就会显示在订单页面并发送到您的邮箱。</p>"
        "<h2>为什么选择我们</h2><ul><li>自动发货，全天候</li><li>正规渠道货源</li><li>售后有保障</li></ul>",
        "<p>We sell digital goods: game cards, top-ups, memberships and software keys. Seconds after you pay, your codes "
        "are on the order page and in your e-mail.</p><h2>Why us</h2><ul><li>Automatic delivery, day and night</li>"
        "<li>Goods from official channels</li><li>After-sales support</li></ul>",
    ),
    (
        "terms", "服务条款", "Terms of service", 20,
        "<p>使用本店即表示您同意以下条款。</p><h2>购买</h2><p>价格以下单时显示为准。卡密一经显示或发送即视为已交付。</p>"
        "<h2>账户</h2><p>请妥善保管您的账户和订单查询凭证。</p><h2>禁止行为</h2><p>不得将本店用于任何违法用途。</p>",
        "<p>By using this shop you agree to these terms.</p><h2>Buying</h2><p>The price is the one shown when you order. "
        "A code counts as delivered once it is shown or sent.</p><h2>Your account</h2><p>Keep your account and your "
        "order look-up details safe.</p><h2>Not allowed</h2><p>Do not use the shop for anything unlawful.</p>",
    ),
    (
        "privacy", "隐私政策", "Privacy policy", 30,
        "<p>我们只收集完成订单所需的信息：邮箱、手机号（如提供）以及订单记录。</p><h2>用途</h2>"
        "<p>用于发货、售后与账户安全，不会出售给第三方。</p><h2>您的权利</h2><p>您可以联系客服查询、更正或删除您的信息。</p>",
        "<p>We collect only what an order needs: your e-mail, your phone number if you give it, and your orders.</p>"
        "<h2>Use</h2><p>For delivery, after-sales and account security; never sold to anyone.</p><h2>Your rights</h2>"
        "<p>Contact customer service to see, correct or delete your data.</p>",
    ),
    (
        "refunds", "退款政策", "Refund policy", 40,
        "<p>虚拟商品一经发货（卡密已显示），原则上不支持无理由退款。</p><h2>可以退款的情况</h2>"
        "<ul><li>卡密无效或已被使用</li><li>付款后缺货无法发货（自动全额退款）</li></ul>"
        "<p>请在订单页面提交售后申请，我们会尽快处理。</p>",
        "<p>Once a digital item is delivered (its code shown), it cannot be returned without a reason.</p>"
        "<h2>When you get a refund</h2><ul><li>The code is invalid or already used</li><li>It cannot be delivered after "
        "payment (refunded in full automatically)</li></ul><p>Ask for after-sales from the order page; we answer fast.</p>",
    ),
    (
        "faq", "常见问题", "FAQ", 50,
        "<h3>付款后多久到账？</h3><p>通常几秒钟，卡密会显示在订单页面并发送到您的邮箱。</p>"
        "<h3>没有注册可以购买吗？</h3><p>可以。用订单号和查询码即可在“查询订单”中找回订单。</p>"
        "<h3>卡密无法使用怎么办？</h3><p>请在订单页面提交售后申请，或联系客服。</p>",
        "<h3>How fast do I get my code?</h3><p>Usually in seconds: on the order page and by e-mail.</p>"
        "<h3>Can I buy without an account?</h3><p>Yes. Find your order later with its number and look-up code.</p>"
        "<h3>My code does not work</h3><p>Ask for after-sales from the order page, or contact customer service.</p>",
    ),
]


def create(apps, schema_editor):
    FooterPage = apps.get_model("catalog", "FooterPage")
    for slug, title, title_en, order, body, body_en in PAGES:
        FooterPage.objects.get_or_create(
            slug=slug,
            defaults={"title": title, "title_en": title_en, "sort_order": order, "body": body, "body_en": body_en},
        )


class Migration(migrations.Migration):
    dependencies = [("catalog", "0009_shop")]

    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
