// Prints the URL the dashboard's presigner (examples/web/sigv4.js) makes for the JSON inputs in
// argv[2], so a Rust test can compare it with the aws-sigv4 crate's.
import { presignMqttUrl } from "../../web/sigv4.js";

const input = JSON.parse(process.argv[2]);
const url = await presignMqttUrl({ ...input, now: new Date(input.nowSecs * 1000) });
console.log(url);
