from django.urls import path

from invoicing import books_pages

urlpatterns = [path("books", books_pages.books_journal, name="books")]
