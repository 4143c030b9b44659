from django.urls import include, path

from accounts import pages

urlpatterns = [
    path("", pages.home, name="home"),
    path("sign-in", pages.sign_in, name="sign-in"),
    path("sign-out", pages.sign_out, name="sign-out"),
    path("choose-role", pages.choose_role, name="choose-role"),
    path("switch-role", pages.switch_role, name="switch-role"),
    path("forgot-password", pages.forgot_password, name="forgot-password"),
    path("set-password/<str:uidb64>/<str:token>", pages.set_password, name="set-password"),
    path("manage/", include("accounts.manage_urls")),
]
