// A tab switch cannot be produced in headless Chromium (every page stays
// visible and focused), so these dispatch what the browser would: the page
// hidden and the window blurred, then visible and focused again.

/** The page's tab loses the user's attention. */
export async function leaveTab(page) {
  await page.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
    document.hasFocus = () => false;
    document.dispatchEvent(new Event('visibilitychange'));
    window.dispatchEvent(new FocusEvent('blur'));
  });
}

/** The page's tab has the user's attention again. */
export async function comeBack(page) {
  await page.evaluate(() => {
    delete document.visibilityState;
    delete document.hidden;
    delete document.hasFocus;
    document.dispatchEvent(new Event('visibilitychange'));
    window.dispatchEvent(new FocusEvent('focus'));
  });
}
