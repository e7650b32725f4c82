// Parse a podcast feed with podcast-partytime (the Podcast Index parser) and print it as JSON.
// Usage: node tests/js/parse.mjs feed.xml   (exit 1 if the parser rejects the feed)
import { readFileSync } from "node:fs";
import pt from "podcast-partytime";

const path = process.argv[2];
if (!path) {
  console.error("usage: node parse.mjs FEED.xml");
  process.exit(2);
}
const feed = pt.parseFeed(readFileSync(path, "utf8"), { allowMissingGuid: false });
if (!feed) {
  console.error(`${path}: podcast-partytime could not parse this feed`);
  process.exit(1);
}
process.stdout.write(JSON.stringify(feed, null, 1) + "\n");
