DROP TABLE live_listeners;
