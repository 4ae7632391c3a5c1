// Stand-in for ComfyUI frontend's scripts/api.js in the widget's browser test: only what the
// widget uses. Like the real ComfyApi.apiURL, routes are prefixed with api_base + "/api".
export const api = {
  api_base: "",
  apiURL(route) {
    return `${this.api_base}/api${route}`;
  },
};
