"""The chat side: one session state machine with Telegram and Kakao adapters over it. It runs no models."""
